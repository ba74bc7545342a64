package httpapi

import (
	"errors"
	"net/http"

	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/registry"
)

// The directory administration endpoints: pause, resume and settings. They
// answer the directory as WorkOS renders it plus dsync's own settings.

// UpdateDirectoryRequest is the body of PATCH /directories/{id}; absent
// fields are left unchanged.
type UpdateDirectoryRequest struct {
	Name *string `json:"name"`
	// OnDeactivate is "keep_inactive" (default) or "delete".
	OnDeactivate *string `json:"on_deactivate"`
	// RateLimitPerSecond caps SCIM requests to the directory; 0 is the
	// server default.
	RateLimitPerSecond *float64 `json:"rate_limit_per_second"`
	// AttributeMapping replaces the custom_attributes key → SCIM path
	// mapping applied when users are written; {} clears it.
	AttributeMapping *map[string]string `json:"attribute_mapping"`
	// RoleMapping replaces the group (id, idp_id or name) → role slug
	// mapping that fills users' role and roles; {} clears it.
	RoleMapping *map[string]string `json:"role_mapping"`
}

// adminDirectory is a directory with the settings these endpoints manage.
type adminDirectory struct {
	workos.Directory
	OnDeactivate       string            `json:"on_deactivate"`
	RateLimitPerSecond float64           `json:"rate_limit_per_second"`
	AttributeMapping   map[string]string `json:"attribute_mapping"`
	RoleMapping        map[string]string `json:"role_mapping"`
}

func newAdminDirectory(d *dsyncv1.Directory) adminDirectory {
	policy := "keep_inactive"
	if d.GetOnDeactivate() == dsyncv1.DeactivatePolicy_DEACTIVATE_POLICY_DELETE {
		policy = "delete"
	}
	rl := d.GetRateLimitPerSecond()
	if rl <= 0 {
		rl = defaultSCIMRate
	}
	am, rm := d.GetAttributeMapping(), d.GetRoleMapping()
	if am == nil {
		am = map[string]string{}
	}
	if rm == nil {
		rm = map[string]string{}
	}
	return adminDirectory{Directory: workos.NewDirectory(d), OnDeactivate: policy, RateLimitPerSecond: rl, AttributeMapping: am, RoleMapping: rm}
}

func (s *server) adminFail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, registry.ErrDirectoryNotFound) {
		err = notFound("Directory %s not found", r.PathValue("id"))
	}
	s.restFail(w, r, err)
}

func (s *server) pauseDirectory(w http.ResponseWriter, r *http.Request) {
	info(r.Context()).directoryID = r.PathValue("id")
	d, err := s.Registry.PauseDirectory(r.Context(), s.source(r), r.PathValue("id"))
	if err != nil {
		s.adminFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newAdminDirectory(d))
}

func (s *server) resumeDirectory(w http.ResponseWriter, r *http.Request) {
	info(r.Context()).directoryID = r.PathValue("id")
	d, err := s.Registry.ResumeDirectory(r.Context(), s.source(r), r.PathValue("id"))
	if err != nil {
		s.adminFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newAdminDirectory(d))
}

func (s *server) updateDirectory(w http.ResponseWriter, r *http.Request) {
	info(r.Context()).directoryID = r.PathValue("id")
	var req UpdateDirectoryRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		s.restFail(w, r, err)
		return
	}
	d, err := s.Registry.UpdateDirectorySettings(r.Context(), s.source(r), r.PathValue("id"), registry.DirectorySettings{
		Name: req.Name, OnDeactivate: req.OnDeactivate, RateLimitPerSecond: req.RateLimitPerSecond,
		AttributeMapping: req.AttributeMapping, RoleMapping: req.RoleMapping,
	})
	if err != nil {
		s.adminFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newAdminDirectory(d))
}
