package event

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// Header names set on every event message.
const (
	HeaderMsgID       = nats.MsgIdHdr // the event id; JetStream dedups on it
	HeaderEventType   = "Dsync-Event-Type"
	HeaderContentType = "Content-Type"
	ContentTypeProto  = "application/protobuf; proto=dsync.v1.Event"
)

// ErrMalformed is returned for a message that is not a dsync event. A
// consumer terminates such a message (it can never succeed) and logs it.
var ErrMalformed = errors.New("malformed event")

// NewMsg encodes ev as a NATS message on subject with the standard headers.
// The caller adds concurrency-control headers.
func NewMsg(subject string, ev *dsyncv1.Event) (*nats.Msg, error) {
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("marshal event %s: %w", ev.GetId(), err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(HeaderMsgID, ev.GetId())
	msg.Header.Set(HeaderEventType, ev.GetType().String())
	msg.Header.Set(HeaderContentType, ContentTypeProto)
	return msg, nil
}

// Decode parses an event message body. It returns ErrMalformed when the body
// is not an event or lacks an id or type.
func Decode(data []byte) (*dsyncv1.Event, error) {
	ev := &dsyncv1.Event{}
	if err := proto.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if ev.GetId() == "" || ev.GetType() == dsyncv1.EventType_EVENT_TYPE_UNSPECIFIED {
		return nil, fmt.Errorf("%w: missing id or type", ErrMalformed)
	}
	return ev, nil
}
