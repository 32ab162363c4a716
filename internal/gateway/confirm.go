package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/ctrlchar"
	"github.com/dromos-dev/dromos/internal/gateway/brokerclient"
	"github.com/dromos-dev/dromos/internal/httpapi"
)

// maxConfirmation bounds a confirmation value: a connection id, a dot and
// 43 characters.
const maxConfirmation = 300

// validateConfirmURL checks the request's confirmation options; the
// broker checks confirm_url against the return-URL allowlist.
func (r *ConnectionRequest) validateConfirmURL() error {
	if r.ConfirmURL == "" {
		return nil
	}
	if err := ctrlchar.Check("confirm_url", r.ConfirmURL); err != nil {
		return httpapi.BadRequest("%s", err)
	}
	if u, err := url.Parse(r.ConfirmURL); len(r.ConfirmURL) > maxReturnURL || err != nil ||
		(u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return httpapi.BadRequest("confirm_url must be an absolute http or https URL of at most %d bytes", maxReturnURL)
	}
	return nil
}

// Confirmation is the answer to a user step that passed: the application
// sends the browser to ContinueURL (a one-time URL: never log it).
type Confirmation struct {
	ConnectionID string
	// Status is the contract status: pending until the browser comes back.
	Status      string
	Detail      string
	ContinueURL string
}

// ConfirmConnection is the user step of a confirmation: the application
// presents the value its confirm_url received and the id of the user it
// has signed in. The broker answers only for the caller's connections.
func (s *service) ConfirmConnection(ctx context.Context, c Caller, value, userID string) (Confirmation, error) {
	switch {
	case value == "" || len(value) > maxConfirmation || ctrlchar.Index(value) >= 0:
		return Confirmation{}, httpapi.BadRequest("confirmation is required (the value confirm_url received)")
	case userID == "":
		return Confirmation{}, httpapi.BadRequest("user_id is required")
	case len(userID) > maxUserID:
		return Confirmation{}, httpapi.BadRequest("user_id must be at most %d bytes", maxUserID)
	}
	out, err := s.broker.ConfirmConnection(ctx, brokerclient.ConfirmRequest{Confirmation: value, UserID: userID, ClientName: c.Name})
	if err != nil {
		return Confirmation{}, err
	}
	if !canonicalUUID(out.ConnectionID) || !absoluteHTTP(out.ContinueURL) {
		return Confirmation{}, httpapi.BadGateway(brokerclient.CodeBrokerError, "the broker answered unexpectedly",
			errors.New("broker confirm_connection: answer without a connection id or continue_url"))
	}
	st, err := statusOf(brokerclient.Connection{Status: out.Status})
	if err != nil {
		return Confirmation{}, err
	}
	return Confirmation{ConnectionID: out.ConnectionID, Status: st.Status, Detail: st.Detail, ContinueURL: out.ContinueURL}, nil
}

type confirmConnectionBody struct {
	Confirmation string `json:"confirmation"`
	UserID       string `json:"user_id"`
}

type confirmConnectionAnswer struct {
	ConnectionID string `json:"connection_id"`
	Status       string `json:"status"`
	Detail       string `json:"detail,omitempty"`
	ContinueURL  string `json:"continue_url"`
}

func (g *Gateway) confirmConnection(w http.ResponseWriter, r *http.Request, c Caller) {
	var in confirmConnectionBody
	if err := httpapi.DecodeJSON(w, r, &in, maxRequestBody); err != nil {
		g.writeError(w, r, asBadInput(err))
		return
	}
	out, err := g.svc.ConfirmConnection(r.Context(), c, in.Confirmation, in.UserID)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, confirmConnectionAnswer(out))
}

// expectedIdentity is the gRPC ExpectedIdentity as the REST object: unset
// stays nil, so an empty message is refused by the broker as an empty
// REST object is.
func expectedIdentity(m *dromosv1.ExpectedIdentity) *brokerclient.ExpectedIdentity {
	if m == nil {
		return nil
	}
	return &brokerclient.ExpectedIdentity{Email: m.GetEmail(), EmailDomain: m.GetEmailDomain(), Sub: m.GetSub()}
}

func (s *grpcServer) ConfirmConnection(ctx context.Context, in *dromosv1.ConfirmConnectionRequest) (*dromosv1.ConfirmConnectionResponse, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out, err := s.g.svc.ConfirmConnection(ctx, c, in.GetConfirmation(), in.GetUserId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &dromosv1.ConfirmConnectionResponse{ConnectionId: out.ConnectionID, Status: out.Status, Detail: out.Detail,
		ContinueUrl: out.ContinueURL}, nil
}
