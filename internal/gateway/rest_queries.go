package gateway

import (
	"net/http"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
)

// listedConnectionAnswer is a check-connection answer with the id.
type listedConnectionAnswer struct {
	ConnectionID string `json:"connection_id"`
	checkConnectionAnswer
}

type listConnectionsAnswer struct {
	Connections []listedConnectionAnswer `json:"connections"`
	NextCursor  string                   `json:"next_cursor,omitempty"`
}

func (g *Gateway) listConnections(w http.ResponseWriter, r *http.Request, c Caller) {
	q, err := parseConnectionQuery(r.URL.Query())
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	page, err := g.svc.ListConnections(r.Context(), c, q)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	out := listConnectionsAnswer{Connections: make([]listedConnectionAnswer, len(page.Connections)), NextCursor: page.NextCursor}
	for i, lc := range page.Connections {
		out.Connections[i] = listedConnectionAnswer{ConnectionID: lc.ConnectionID, checkConnectionAnswer: checkConnectionAnswer(lc.ConnectionStatus)}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// connectionAnswer is GET /v1/connections/{id}: check-connection's answer
// and the connection's record.
type connectionAnswer struct {
	ConnectionID string `json:"connection_id"`
	checkConnectionAnswer
	UserID        string     `json:"user_id"`
	ProviderName  string     `json:"provider_name"`
	ProviderID    string     `json:"provider_id"`
	Scopes        []string   `json:"scopes"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	LastRefreshAt *time.Time `json:"last_refresh_at,omitempty"`
}

func (g *Gateway) getConnection(w http.ResponseWriter, r *http.Request, c Caller) {
	rec, err := g.svc.GetConnection(r.Context(), c, r.PathValue("connection_id"))
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, connectionAnswer{ConnectionID: rec.ConnectionID,
		checkConnectionAnswer: checkConnectionAnswer(rec.ConnectionStatus), UserID: rec.UserID,
		ProviderName: rec.ProviderName, ProviderID: rec.ProviderID, Scopes: rec.Scopes,
		CreatedAt: rec.CreatedAt.UTC(), UpdatedAt: rec.UpdatedAt.UTC(), LastRefreshAt: rec.LastRefreshAt})
}
