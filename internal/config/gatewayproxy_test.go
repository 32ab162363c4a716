package config

import (
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/proxy"
)

func TestGatewayProxySettings(t *testing.T) {
	base := func() Env {
		return Env{"BROKER_BASE_URL": "http://broker:8080", "STATE_KEY": key32, "GATEWAY_API_KEYS": "agent-a:agent-key-0123456789"}
	}
	g, err := LoadGateway(base())
	if err != nil {
		t.Fatal(err)
	}
	want := proxy.Config{MaxRequestBody: proxy.DefaultMaxRequestBody, MaxResponseBody: proxy.DefaultMaxResponseBody,
		MaxReplayBody: proxy.DefaultMaxReplayBody, Timeout: proxy.DefaultTimeout, MaxPerAgent: proxy.DefaultMaxPerAgent}
	if g.Proxy != want {
		t.Fatalf("defaults %+v, want %+v", g.Proxy, want)
	}
	env := base()
	env["GATEWAY_PROXY_TIMEOUT"] = "5s"
	env["GATEWAY_PROXY_MAX_PER_AGENT"] = "4"
	env["GATEWAY_PROXY_ALLOW_PRIVATE"] = "true"
	if g, err = LoadGateway(env); err != nil || g.Proxy.Timeout != 5*time.Second || g.Proxy.MaxPerAgent != 4 || !g.Proxy.AllowPrivate {
		t.Fatalf("set: %+v, %v", g.Proxy, err)
	}
	env["DROMOS_ENV"] = "production"
	env["BROKER_API_KEY"] = "broker-key-0123456789"
	if _, err := LoadGateway(env); err == nil || !strings.Contains(err.Error(), "GATEWAY_PROXY_ALLOW_PRIVATE must not be set") {
		t.Fatalf("production with private addresses allowed: %v", err)
	}
}
