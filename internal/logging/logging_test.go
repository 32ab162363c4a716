package logging

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactsSecretKeysAndAddsRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelDebug)
	ctx := WithRequestID(context.Background(), "req-123")
	log.InfoContext(ctx, "exchange",
		"access_token", "at-SECRET-1",
		"Code-Verifier", "cv-SECRET-2",
		slog.Group("req", "Authorization", "Bearer SECRET-3"),
		"provider", "google")
	out := buf.String()
	for _, s := range []string{"SECRET-1", "SECRET-2", "SECRET-3"} {
		if strings.Contains(out, s) {
			t.Errorf("log line leaks %s: %s", s, out)
		}
	}
	for _, s := range []string{`"request_id":"req-123"`, `"provider":"google"`, Redacted} {
		if !strings.Contains(out, s) {
			t.Errorf("log line lacks %s: %s", s, out)
		}
	}
}

func TestNoRequestIDWithoutContext(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, slog.LevelInfo).With("component", "x").Info("hello")
	if strings.Contains(buf.String(), "request_id") {
		t.Fatalf("unexpected request_id: %s", buf.String())
	}
	if !strings.Contains(buf.String(), `"component":"x"`) {
		t.Fatalf("attrs lost through WithAttrs: %s", buf.String())
	}
}
