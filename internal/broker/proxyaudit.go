package broker

import (
	"errors"
	"net/http"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/proxyaudit"
	"github.com/dromos-dev/dromos/internal/storage"
)

// recordProxyCalls is POST /audit/proxy-calls: a gateway's batch of API
// proxy calls (package proxyaudit), one proxy.call audit row each. Only a
// gateway sends it (the gateway mark, and the broker's API key when keys
// are configured, as on every API route). The whole batch is checked
// before anything is written: one bad event refuses it all. Each row says
// whether the connection it names is the agent's; the broker never
// takes the gateway's word for it.
func (b *Broker) recordProxyCalls(w http.ResponseWriter, r *http.Request) error {
	if r.Header.Get(httpapi.GatewayHeader) == "" {
		return &httpapi.Error{Status: http.StatusForbidden, Code: "forbidden", Message: "only a gateway records proxy calls"}
	}
	var in proxyaudit.Batch
	if err := httpapi.DecodeJSON(w, r, &in, httpapi.MaxBody); err != nil {
		return err
	}
	if err := in.Check(b.now()); err != nil {
		return httpapi.BadRequest("%s", err.Error())
	}
	ctx := r.Context()
	conns := map[string]*storage.Connection{}
	for _, e := range in.Events {
		if _, seen := conns[e.ConnectionID]; seen || e.ConnectionID == "" {
			continue
		}
		c, err := b.store.GetConnection(ctx, e.ConnectionID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			conns[e.ConnectionID] = nil
		case err != nil:
			return err // nothing queued yet: the gateway tries again
		default:
			conns[e.ConnectionID] = &c
		}
	}
	var ip string
	if a := b.clientIP(r); a.IsValid() {
		ip = a.Unmap().String()
	}
	ua := storableText(r.UserAgent(), 256)
	for _, e := range in.Events {
		own, providerID := proxyaudit.NoConnection, ""
		if c := conns[e.ConnectionID]; c != nil {
			own, providerID = proxyaudit.OwnedByOther, c.ProviderID
			if c.ClientName == e.Agent {
				own = proxyaudit.OwnedByAgent
			}
		}
		row := e.Row(own)
		row.ProviderID, row.ClientIP, row.UserAgent = providerID, ip, ua
		b.auditq.Add(row)
	}
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]int{"accepted": len(in.Events)})
	return nil
}
