package config

import (
	"strings"
	"testing"
)

func TestLoadServe(t *testing.T) {
	base := func() Env {
		return Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b, "GATEWAY_API_KEYS": "agent-a:0123456789abcdef0123"}
	}
	t.Run("one configuration for both parts", func(t *testing.T) {
		env := base()
		env["PORT"], env["GATEWAY_PORT"], env["GATEWAY_PORT_GRPC"], env["LISTEN_HOST"] = "7000", "7001", "7002", "127.0.0.1"
		env["MAX_CONNECTIONS"], env["LOG_LEVEL"] = "500", "debug"
		s, err := LoadServe(env)
		if err != nil {
			t.Fatal(err)
		}
		if s.Broker.Port != 7000 || s.Gateway.Port != 7001 || s.Gateway.GRPCPort != 7002 {
			t.Errorf("ports %d %d %d", s.Broker.Port, s.Gateway.Port, s.Gateway.GRPCPort)
		}
		if s.Gateway.ListenHost != "127.0.0.1" || s.Gateway.MaxConnections != 500 || s.Gateway.LogLevel != s.Broker.LogLevel {
			t.Errorf("shared settings not shared: %+v", s.Gateway)
		}
		if len(s.Gateway.StateKeys) != 1 || string(s.Gateway.StateKeys[0].Secret) != string(s.Broker.StateKeys[0].Secret) {
			t.Error("the gateway does not verify with the broker's state key")
		}
		if s.Gateway.BrokerBaseURL != "" || len(s.Gateway.Clients) != 1 || s.Gateway.Clients[0].Name != "agent-a" {
			t.Errorf("gateway part: %+v", s.Gateway)
		}
	})
	for name, tc := range map[string]struct {
		edit func(Env)
		want []string
	}{
		"every problem of both parts at once": {func(e Env) { delete(e, "ENCRYPTION_KEY"); delete(e, "GATEWAY_API_KEYS") },
			[]string{"ENCRYPTION_KEY", "GATEWAY_API_KEYS is empty"}},
		"gateway port on the broker's": {func(e Env) { e["PORT"], e["GATEWAY_PORT"] = "7000", "7000" },
			[]string{"PORT and GATEWAY_PORT must differ"}},
		"grpc port on the gateway's": {func(e Env) { e["GATEWAY_PORT"], e["GATEWAY_PORT_GRPC"] = "7001", "7001" },
			[]string{"GATEWAY_PORT and GATEWAY_PORT_GRPC must differ"}},
		"production refuses anonymous agents": {func(e Env) {
			e["DROMOS_ENV"], e["GATEWAY_ALLOW_ANONYMOUS"] = "production", "true"
		}, []string{"GATEWAY_ALLOW_ANONYMOUS must not be set", "BASE_URL must be https"}},
	} {
		t.Run(name, func(t *testing.T) {
			env := base()
			tc.edit(env)
			_, err := LoadServe(env)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	t.Run("ports 0 may repeat", func(t *testing.T) {
		env := base()
		env["PORT"], env["GATEWAY_PORT"], env["GATEWAY_PORT_GRPC"] = "0", "0", "0"
		if _, err := LoadServe(env); err != nil {
			t.Fatal(err)
		}
	})
}
