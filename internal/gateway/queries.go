package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/dromos-dev/dromos/internal/ctrlchar"
	"github.com/dromos-dev/dromos/internal/gateway/brokerclient"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/pagecursor"
)

// Listing page sizes.
const (
	defaultListLimit = 50
	maxListLimit     = 200
)

// ConnectionQuery narrows a listing of the caller's connections; empty
// fields match everything.
type ConnectionQuery struct {
	UserID       string
	ProviderName string
	Status       string // StatusPending, StatusActive or StatusFailed
	Limit        int    // 0 means defaultListLimit
	Cursor       string // NextCursor of the page before
}

// parseConnectionQuery reads a listing query from URL query values; the
// error names the parameter at fault.
func parseConnectionQuery(v url.Values) (ConnectionQuery, error) {
	q := ConnectionQuery{UserID: v.Get("user_id"), ProviderName: v.Get("provider_name"),
		Status: v.Get("status"), Cursor: v.Get("cursor")}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return ConnectionQuery{}, httpapi.BadRequest("limit must be a number from 1 to %d", maxListLimit)
		}
		q.Limit = n
	}
	return q, q.validate()
}

func (q *ConnectionQuery) validate() error {
	switch {
	case len(q.UserID) > maxUserID:
		return httpapi.BadRequest("user_id must be at most %d bytes", maxUserID)
	case ctrlchar.Check("user_id", q.UserID) != nil:
		return httpapi.BadRequest("%s", ctrlchar.Check("user_id", q.UserID))
	case len(q.ProviderName) > maxProviderName:
		return httpapi.BadRequest("provider_name must be at most %d bytes", maxProviderName)
	case ctrlchar.Check("provider_name", q.ProviderName) != nil:
		return httpapi.BadRequest("%s", ctrlchar.Check("provider_name", q.ProviderName))
	case q.Status != "" && brokerStatuses[q.Status] == nil:
		return httpapi.BadRequest("status must be pending, active or failed")
	case q.Limit < 0 || q.Limit > maxListLimit:
		return httpapi.BadRequest("limit must be a number from 1 to %d", maxListLimit)
	}
	if q.Cursor != "" {
		if _, err := pagecursor.Decode(q.Cursor); err != nil {
			return httpapi.BadRequest("cursor is not one this API returned")
		}
	}
	return nil
}

// brokerStatuses are the broker statuses each contract status covers.
var brokerStatuses = map[string][]string{
	StatusPending: {"pending", "exchanging", "awaiting_confirmation"},
	StatusActive:  {"active"},
	StatusFailed:  {"failed", "expired", "revoked"},
}

// ListedConnection is one connection of a listing: its id and what
// check-connection says of it.
type ListedConnection struct {
	ConnectionID string
	ConnectionStatus
}

// ConnectionPage is one page of a listing; NextCursor is empty on the last.
type ConnectionPage struct {
	Connections []ListedConnection
	NextCursor  string
}

// ConnectionRecord is check-connection's answer with the connection's
// whole public record.
type ConnectionRecord struct {
	ConnectionID string
	ConnectionStatus
	UserID        string
	ProviderName  string
	ProviderID    string
	Scopes        []string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastRefreshAt *time.Time
}

// ListConnections lists the caller's connections, oldest first, with the
// same owner filter as CheckConnection: no filter or cursor widens it.
func (s *service) ListConnections(ctx context.Context, c Caller, q ConnectionQuery) (ConnectionPage, error) {
	if err := q.validate(); err != nil {
		return ConnectionPage{}, err
	}
	if c.Name == "" {
		// Without a name the broker would apply no owner filter at all.
		return ConnectionPage{}, errors.New("gateway: caller without a name")
	}
	if q.Limit == 0 {
		q.Limit = defaultListLimit
	}
	page, err := s.broker.ListConnections(ctx, brokerclient.ConnectionQuery{ClientName: c.Name, UserID: q.UserID,
		ProviderName: q.ProviderName, Statuses: brokerStatuses[q.Status], Limit: q.Limit, Cursor: q.Cursor})
	if err != nil {
		return ConnectionPage{}, err
	}
	if len(page.Connections) > q.Limit {
		return ConnectionPage{}, httpapi.BadGateway(brokerclient.CodeBrokerError, "the broker sent a page larger than asked",
			fmt.Errorf("broker list_connections: %d rows for limit %d", len(page.Connections), q.Limit))
	}
	out := ConnectionPage{Connections: make([]ListedConnection, 0, len(page.Connections)), NextCursor: page.NextCursor}
	for _, conn := range page.Connections {
		// The broker filtered on the owner; checking again costs nothing
		// and keeps a broker fault from leaking another agent's rows.
		if conn.ClientName != c.Name || !canonicalUUID(conn.ConnectionID) {
			return ConnectionPage{}, httpapi.BadGateway(brokerclient.CodeBrokerError, "the broker listed a connection it should not have",
				errors.New("broker list_connections: row of another client or with a bad id"))
		}
		st, err := statusOf(conn)
		if err != nil {
			return ConnectionPage{}, err
		}
		out.Connections = append(out.Connections, ListedConnection{ConnectionID: conn.ConnectionID, ConnectionStatus: st})
	}
	return out, nil
}

// GetConnection is CheckConnection with the connection's whole record.
func (s *service) GetConnection(ctx context.Context, c Caller, id string) (ConnectionRecord, error) {
	conn, err := s.ownConnection(ctx, c, id)
	if err != nil {
		return ConnectionRecord{}, err
	}
	st, err := statusOf(conn)
	if err != nil {
		return ConnectionRecord{}, err
	}
	scopes := conn.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return ConnectionRecord{ConnectionID: id, ConnectionStatus: st, UserID: conn.UserID, ProviderName: conn.Provider,
		ProviderID: conn.ProviderID, Scopes: scopes, CreatedAt: conn.CreatedAt, UpdatedAt: conn.UpdatedAt,
		LastRefreshAt: conn.LastRefreshAt}, nil
}
