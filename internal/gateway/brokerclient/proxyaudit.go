package brokerclient

import (
	"context"
	"net/http"

	"github.com/dromos-dev/dromos/internal/proxyaudit"
)

// OpRecordProxyCalls sends a batch of the API proxy's audit records.
const OpRecordProxyCalls = "record_proxy_calls"

// RecordProxyCalls hands a batch of proxied calls to the broker, which
// writes one audit row per call. Tried once, like every call that is not
// a GET: the gateway's batcher keeps a failed batch for its next round.
func (cl *Client) RecordProxyCalls(ctx context.Context, events []proxyaudit.Event) error {
	return cl.do(ctx, call{op: OpRecordProxyCalls, method: http.MethodPost, path: []string{"audit", "proxy-calls"},
		body: proxyaudit.Batch{Events: events}}, nil)
}
