package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Cookie names. Not __Host- prefixed: that prefix requires Secure, and
// `dsync dev` serves plain HTTP on loopback.
const (
	sessionCookie    = "dsync_session"
	loginCSRFCookie  = "dsync_login_csrf"
	csrfField        = "csrf"
	maxFormBytes     = 64 << 10
	maxLoginFailures = 20
	loginWindow      = time.Minute
)

// session is one signed-in browser. Only the SHA-256 of its cookie value is
// held, so that a dump of memory or a timing side channel on the map lookup
// does not yield a usable cookie.
type session struct {
	csrf     string
	created  time.Time
	lastSeen time.Time
}

type sessionStore struct {
	now      func() time.Time
	ttl      time.Duration
	idle     time.Duration
	mu       sync.Mutex
	sessions map[[sha256.Size]byte]*session
}

func newSessionStore(now func() time.Time, ttl, idle time.Duration) *sessionStore {
	return &sessionStore{now: now, ttl: ttl, idle: idle, sessions: map[[sha256.Size]byte]*session{}}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24).
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session and returns its cookie value.
func (s *sessionStore) create() (string, *session) {
	id := randomToken()
	now := s.now()
	ss := &session{csrf: randomToken(), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Sweep here rather than on a timer: sessions are few (operators).
	for k, v := range s.sessions {
		if s.expired(v, now) {
			delete(s.sessions, k)
		}
	}
	s.sessions[sha256.Sum256([]byte(id))] = ss
	return id, ss
}

func (s *sessionStore) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.created) > s.ttl || now.Sub(ss.lastSeen) > s.idle
}

// get returns the live session of a cookie value and marks it used.
func (s *sessionStore) get(id string) (*session, bool) {
	if id == "" {
		return nil, false
	}
	key := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[key]
	if !ok {
		return nil, false
	}
	if s.expired(ss, now) {
		delete(s.sessions, key)
		return nil, false
	}
	ss.lastSeen = now
	return ss, true
}

func (s *sessionStore) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sha256.Sum256([]byte(id)))
}

// loginLimiter slows password guessing: after maxLoginFailures failed
// sign-ins within loginWindow, sign-in is refused until the window passes.
// It is global, not per address, because behind a proxy every address is
// the proxy's; the API key and a sensible password are not guessable in
// 20 tries a minute either way.
type loginLimiter struct {
	now      func() time.Time
	mu       sync.Mutex
	failures []time.Time
}

func newLoginLimiter(now func() time.Time) *loginLimiter { return &loginLimiter{now: now} }

// retryAfter returns how long sign-in stays blocked; 0 when it is allowed.
func (l *loginLimiter) retryAfter() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	kept := l.failures[:0]
	for _, t := range l.failures {
		if now.Sub(t) < loginWindow {
			kept = append(kept, t)
		}
	}
	l.failures = kept
	if len(l.failures) < maxLoginFailures {
		return 0
	}
	return loginWindow - now.Sub(l.failures[0])
}

func (l *loginLimiter) fail() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, l.now())
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *session {
	ss, _ := ctx.Value(sessionKey{}).(*session)
	return ss
}

// requireSession admits requests with a live session; a browser without one
// is sent to the sign-in page, anything else gets 401. Every state-changing
// request must also carry the session's CSRF token in its form.
func (d *Dashboard) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Cookie(sessionCookie)
		var ss *session
		if c != nil {
			ss, _ = d.sessions.get(c.Value)
		}
		if ss == nil {
			if r.Method == http.MethodGet && WantsHTML(r) {
				http.Redirect(w, r, "/dashboard/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in required", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameOrigin(r) || !d.checkFormCSRF(w, r, ss.csrf) {
				d.renderError(w, r, http.StatusForbidden, "Request refused",
					"The form was stale or came from another site. Go back, reload the page and try again.")
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, ss)))
	})
}

// checkFormCSRF parses the (size-limited) form and compares its CSRF field
// with want in constant time.
func (d *Dashboard) checkFormCSRF(w http.ResponseWriter, r *http.Request, want string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return false
	}
	got := r.PostForm.Get(csrfField)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// sameOrigin rejects requests a browser marks as cross-site, a second line
// behind the CSRF token and SameSite=Strict.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		return o == "http://"+r.Host || o == "https://"+r.Host
	}
	return true
}

func (d *Dashboard) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/dashboard/",
		MaxAge:   int(maxAge / time.Second),
		HttpOnly: true, Secure: isHTTPS(r), SameSite: http.SameSiteStrictMode,
	})
}

type loginData struct {
	Next    string
	Error   string
	HasPass bool
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if c, _ := r.Cookie(sessionCookie); c != nil {
		if _, ok := d.sessions.get(c.Value); ok {
			http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
			return
		}
	}
	d.renderLogin(w, r, http.StatusOK, "")
}

func (d *Dashboard) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	// Sign-in has no session yet, so its CSRF token is double-submitted: a
	// random cookie that a cross-site form cannot read or set, echoed in
	// the form.
	token := randomToken()
	d.setCookie(w, r, loginCSRFCookie, token, time.Hour)
	w.Header().Set("Cache-Control", "no-store")
	d.render(w, r, status, "login", page{
		Title: "Sign in", CSRF: token,
		Data: loginData{Next: safeNext(r.FormValue("next")), Error: msg, HasPass: d.cfg.Password != ""},
	})
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	c, _ := r.Cookie(loginCSRFCookie)
	if c == nil || !sameOrigin(r) || !d.checkFormCSRF(w, r, c.Value) {
		d.renderLogin(w, r, http.StatusForbidden, "Your sign-in form expired. Please try again.")
		return
	}
	if wait := d.limiter.retryAfter(); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		d.renderLogin(w, r, http.StatusTooManyRequests, "Too many failed sign-ins. Wait a minute and try again.")
		return
	}
	secret := r.PostForm.Get("secret")
	if !d.validSecret(secret) {
		d.limiter.fail()
		d.log.WarnContext(r.Context(), "dashboard sign-in failed")
		d.renderLogin(w, r, http.StatusUnauthorized, "That API key or password is not right.")
		return
	}
	id, _ := d.sessions.create()
	d.setCookie(w, r, sessionCookie, id, d.cfg.SessionTTL)
	d.setCookie(w, r, loginCSRFCookie, "", -time.Second)
	d.log.InfoContext(r.Context(), "dashboard sign-in")
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

// validSecret compares by SHA-256 in constant time, so that neither the
// secret's length nor a matching prefix shows in the timing.
func (d *Dashboard) validSecret(secret string) bool {
	if secret == "" {
		return false
	}
	sum := sha256.Sum256([]byte(secret))
	ok := subtle.ConstantTimeCompare(sum[:], d.apiKeySum[:])
	if d.cfg.Password != "" {
		ok |= subtle.ConstantTimeCompare(sum[:], d.pwSum[:])
	}
	return ok == 1
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if c, _ := r.Cookie(sessionCookie); c != nil {
		d.sessions.delete(c.Value)
	}
	d.setCookie(w, r, sessionCookie, "", -time.Second)
	http.Redirect(w, r, "/dashboard/login", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in redirect on the dashboard: an open
// redirect to another site would make the sign-in page a phishing aid.
func safeNext(next string) string {
	if len(next) > 1 && next[0] == '/' && next[1] != '/' && next[1] != '\\' &&
		len(next) >= len(Prefix) && next[:len(Prefix)] == Prefix {
		return next
	}
	return Prefix
}
