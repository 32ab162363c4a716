package exchange_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/dromos-dev/dromos/internal/exchange"
)

func TestResourceSentOnTokenRequests(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		seen = append(seen, r.PostForm.Get("grant_type")+"="+r.PostForm.Get("resource"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"a","token_type":"Bearer","expires_in":60,"refresh_token":"r"}`))
	}))
	defer srv.Close()
	c := exchange.New(exchange.Options{})
	ep := exchange.Endpoint{TokenURL: srv.URL, ClientID: "c", AuthMethod: exchange.AuthNone, Resource: "https://mcp.example/mcp"}
	ctx := context.Background()
	if _, err := c.ExchangeCode(ctx, ep, "code", "verifier", "https://b/cb"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(ctx, ep, "r", nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"authorization_code=https://mcp.example/mcp", "refresh_token=https://mcp.example/mcp"}
	if len(seen) != 2 || seen[0] != want[0] || seen[1] != want[1] {
		t.Fatalf("token requests %q, want %q", seen, want)
	}
}
