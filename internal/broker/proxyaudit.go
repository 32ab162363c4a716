package broker

import (
	"net/http"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/proxyaudit"
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
	ids := make([]string, 0, len(in.Events))
	for _, e := range in.Events {
		if e.ConnectionID != "" {
			ids = append(ids, e.ConnectionID)
		}
	}
	// One query for every connection the batch names (a look-up per
	// connection was a third of the broker's work for a busy proxy).
	owners, err := b.store.ConnectionOwners(r.Context(), ids)
	if err != nil {
		return err // nothing queued yet: the gateway tries again
	}
	var ip string
	if a := b.clientIP(r); a.IsValid() {
		ip = a.Unmap().String()
	}
	ua := storableText(r.UserAgent(), 256)
	for _, e := range in.Events {
		own, providerID := proxyaudit.NoConnection, ""
		if c, ok := owners[e.ConnectionID]; ok && e.ConnectionID != "" {
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
