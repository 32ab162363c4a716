package sdk

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ListConnectionsInput narrows ListConnections; the zero value lists all
// of your connections, 50 to a page.
type ListConnectionsInput struct {
	UserID       string
	ProviderName string
	Status       string // StatusPending, StatusActive or StatusFailed; "" for any
	Limit        int    // 1 to 200; 0 for the gateway's default (50)
	// Cursor is the NextCursor of the page before; "" for the first page.
	Cursor string
}

// ListedConnection is one connection of a listing: its id and what
// CheckConnection says of it.
type ListedConnection struct {
	ConnectionID string `json:"connection_id"`
	Status
}

// ConnectionPage is one page of ListConnections. NextCursor is empty on
// the last page; otherwise pass it as ListConnectionsInput.Cursor, with
// the same filters, for the next one.
type ConnectionPage struct {
	Connections []ListedConnection `json:"connections"`
	NextCursor  string             `json:"next_cursor,omitempty"`
}

// ConnectionRecord is CheckConnection's answer with the connection's
// record. LastRefreshAt is zero while the token was never refreshed.
type ConnectionRecord struct {
	ConnectionID string `json:"connection_id"`
	Status
	UserID        string    `json:"user_id"`
	ProviderName  string    `json:"provider_name"`
	ProviderID    string    `json:"provider_id"`
	Scopes        []string  `json:"scopes"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	LastRefreshAt time.Time `json:"last_refresh_at"`
}

// ListConnections lists your connections (the ones your API key
// requested), oldest first, one page at a time.
func (c *Client) ListConnections(ctx context.Context, in ListConnectionsInput) (*ConnectionPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"user_id": in.UserID, "provider_name": in.ProviderName,
		"status": in.Status, "cursor": in.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if in.Limit != 0 {
		q.Set("limit", strconv.Itoa(in.Limit))
	}
	p := "/v1/connections"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var out ConnectionPage
	if err := c.do(ctx, call{method: http.MethodGet, route: "/v1/connections", path: p}, &out); err != nil {
		return nil, err
	}
	for _, lc := range out.Connections {
		if lc.ConnectionID == "" {
			return nil, errors.New("dromos: connection listing has an item without connection_id")
		}
	}
	return &out, nil
}

// GetConnection is CheckConnection with the connection's whole record.
func (c *Client) GetConnection(ctx context.Context, id string) (*ConnectionRecord, error) {
	p, err := connPath("/v1/connections", id)
	if err != nil {
		return nil, err
	}
	var rec ConnectionRecord
	if err := c.do(ctx, call{method: http.MethodGet, route: "/v1/connections/{id}", path: p}, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}
