package gateway_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/state"
)

// A gateway given only the broker's public keys accepts the states the
// broker signs, and holds nothing that could sign one.
func TestGatewayVerifiesWithPublicKeysOnly(t *testing.T) {
	pubs, err := state.PublicKeys([]state.Key{stateKey(7)})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *gateway.Config) { c.StateKeys, c.StatePublicKeys = nil, pubs })
	res := h.call("POST", "/v1/request-connection", "/v1/request-connection", bearer(keyA), consentBody)
	if res.status != http.StatusOK && res.status != http.StatusCreated {
		t.Fatalf("got %d %s", res.status, res.body)
	}
	if strings.Contains(h.logs.String(), "STATE_KEY") {
		t.Fatalf("a gateway with public keys warns about STATE_KEY:\n%s", h.logs.String())
	}
}

// Given STATE_KEY, the gateway keeps only the derived public keys and says
// so, naming the value to configure instead and never the seed.
func TestGatewayGivenStateKeyWarns(t *testing.T) {
	h := newHarness(t)
	pubs, _ := state.PublicKeys([]state.Key{stateKey(7)})
	logs := h.logs.String()
	if !strings.Contains(logs, "give it only the public keys") || !strings.Contains(logs, state.FormatPublicKeys(pubs)) {
		t.Fatalf("no warning naming STATE_PUBLIC_KEYS:\n%s", logs)
	}
	seed := stateKey(7).Secret
	for _, enc := range []string{base64.StdEncoding.EncodeToString(seed), base64.RawURLEncoding.EncodeToString(seed)} {
		if strings.Contains(logs, enc) {
			t.Fatal("the log holds the state key")
		}
	}
	res := h.call("POST", "/v1/request-connection", "/v1/request-connection", bearer(keyA), consentBody)
	if res.status != http.StatusOK && res.status != http.StatusCreated {
		t.Fatalf("got %d %s", res.status, res.body)
	}
}
