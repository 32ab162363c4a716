package brokerclient

import (
	"context"
	"net/http"
)

// TokenOptions ask the broker for more than the default token answer.
type TokenOptions struct {
	// IDToken asks for the provider's id_token, which the broker leaves
	// out unless asked (or its operator turned it on for everyone).
	IDToken bool
}

func (o TokenOptions) query(clientName string) string {
	q := clientQuery(clientName)
	if o.IDToken {
		if q != "" {
			q += "&"
		}
		q += "id_token=true"
	}
	return q
}

// TokenWith is Token with options.
func (cl *Client) TokenWith(ctx context.Context, id, clientName string, o TokenOptions) (Token, error) {
	return cl.token(ctx, call{op: OpGetToken, method: http.MethodGet, path: []string{"connections", id, "token"}, query: o.query(clientName)})
}

// RefreshWith is Refresh with options; never retried either.
func (cl *Client) RefreshWith(ctx context.Context, id, clientName string, o TokenOptions) (Token, error) {
	return cl.token(ctx, call{op: OpRefresh, method: http.MethodPost, path: []string{"connections", id, "refresh"}, query: o.query(clientName)})
}
