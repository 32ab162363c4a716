package tracing

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestExportsOverOTLPHTTP: with an endpoint configured, spans reach a
// loopback OTLP/HTTP receiver as protobuf, with the configured headers,
// by the time Shutdown returns.
func TestExportsOverOTLPHTTP(t *testing.T) {
	type export struct {
		path, contentType, auth string
		body                    []byte
	}
	var (
		mu  sync.Mutex
		got []export
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, export{r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), b})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	tr, err := New(context.Background(), Config{
		Endpoint: srv.URL + "/v1/traces",
		Headers:  map[string]string{"Authorization": "Bearer collector-credential"},
	}, Options{ServiceName: "dromos-broker", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Enabled() {
		t.Fatal("an endpoint is set but tracing is off")
	}
	_, span := tr.Tracer().Start(context.Background(), "token.refresh")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("the receiver got no export")
	}
	e := got[0]
	if e.path != "/v1/traces" || e.contentType != "application/x-protobuf" || e.auth != "Bearer collector-credential" {
		t.Fatalf("export to %s as %q with Authorization %q", e.path, e.contentType, e.auth)
	}
	for _, want := range []string{"token.refresh", "dromos-broker"} {
		if !contains(e.body, want) {
			t.Errorf("exported payload lacks %q", want)
		}
	}
}

func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }
