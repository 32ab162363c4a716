package config

import (
	"crypto/sha256"
	"encoding/base64"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	key32  = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	key32b = base64.RawURLEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	key32c = base64.StdEncoding.EncodeToString([]byte("state-key-state-key-state-key-32"))
)

func TestLoadBrokerDefaults(t *testing.T) {
	b, err := LoadBroker(Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b})
	if err != nil {
		t.Fatal(err)
	}
	if b.Port != 8080 || b.BaseURL != "http://localhost:8080" || b.RedirectURI() != "http://localhost:8080/auth/callback" ||
		b.DatabaseURL != "sqlite:dromos.db" || len(b.EncryptionKeys) != 1 || b.EncryptionKeys[0].ID != 1 || len(b.StateKeys) != 1 {
		t.Fatalf("defaults: %+v", b)
	}
	if b.RequireAPIKey || b.ExposeRefreshToken {
		t.Fatal("guards/exposure on by default")
	}
}

func TestLoadBrokerReportsEveryProblemWithoutValues(t *testing.T) {
	secretish := "c2VjcmV0LXZhbHVlLXRoYXQtaXMtbm90LTMyLWJ5dGVz"
	_, err := LoadBroker(Env{
		"ENCRYPTION_KEY":     secretish,
		"PORT":               "http",
		"BASE_URL":           "ftp://x",
		"REQUIRE_API_KEY":    "yes please",
		"ALLOWED_CIDRS":      "10.0.0.0/8,not-a-cidr",
		"REQUIRE_ALLOWLIST":  "true",
		"ENFORCE_RETURN_URL": "true",
		"LOG_LEVEL":          "loud",
		"REDIRECT_PATH":      "callback",
		"API_KEYS":           "sha256:zz",
	})
	if err == nil {
		t.Fatal("expected errors")
	}
	msg := err.Error()
	for _, want := range []string{"ENCRYPTION_KEY must be base64", "STATE_KEY is required", "PORT must be a port",
		"BASE_URL must be an absolute", "REQUIRE_API_KEY must be true or false", "ALLOWED_CIDRS entry 2",
		"ENFORCE_RETURN_URL=true needs", "LOG_LEVEL", "REDIRECT_PATH must be an absolute path", "API_KEYS entry 1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in %s", want, msg)
		}
	}
	if strings.Contains(msg, secretish) {
		t.Fatal("error echoes a key value")
	}
}

func TestKeyListsAndAPIKeys(t *testing.T) {
	hashed := sha256.Sum256([]byte("agent-key"))
	b, err := LoadBroker(Env{
		"ENCRYPTION_KEYS": "2:" + key32b + ",1:" + key32,
		"STATE_KEY":       key32c,
		"API_KEY":         "plain-key-0123456789",
		"API_KEYS":        "sha256:" + strings.ToLower(hexOf(hashed[:])),
		"REQUIRE_API_KEY": "true",
		"ALLOWED_CIDRS":   "127.0.0.1, 10.1.2.3/8",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.EncryptionKeys) != 2 || b.EncryptionKeys[0].ID != 2 {
		t.Fatalf("key order: %+v", b.EncryptionKeys)
	}
	if len(b.APIKeys) != 2 || b.APIKeys[0] != sha256.Sum256([]byte("plain-key-0123456789")) || b.APIKeys[1] != hashed {
		t.Fatal("api key hashes")
	}
	if len(b.AllowedCIDRs) != 2 || b.AllowedCIDRs[1].String() != "10.0.0.0/8" {
		t.Fatalf("cidrs %v", b.AllowedCIDRs)
	}
	// The hash form in any case is a hash, never a plain key; short plain
	// keys are refused without echoing them.
	_, err = LoadBroker(Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b, "API_KEYS": "Sha256:abc,short-key"})
	if err == nil || !strings.Contains(err.Error(), "API_KEYS entry 1: sha256:") ||
		!strings.Contains(err.Error(), "API_KEYS entry 2: a plain key must be at least 16") || strings.Contains(err.Error(), "short-key") {
		t.Fatalf("bad API keys: %v", err)
	}
	if _, err := LoadBroker(Env{"ENCRYPTION_KEYS": "1:" + key32 + ",1:" + key32b, "STATE_KEY": key32c}); err == nil ||
		!strings.Contains(err.Error(), "repeats key id 1") {
		t.Fatalf("duplicate ids: %v", err)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, len(b)*2)
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestProductionModeRefusesInsecureDefaults(t *testing.T) {
	_, err := LoadBroker(Env{"DROMOS_ENV": "production", "ENCRYPTION_KEY": key32, "STATE_KEY": key32b,
		"INSECURE_SKIP_BROWSER_BINDING": "true"})
	if err == nil {
		t.Fatal("production started on defaults")
	}
	for _, want := range []string{"BASE_URL must be https", "REQUIRE_API_KEY must be true", "ENFORCE_RETURN_URL must be true",
		"INSECURE_SKIP_BROWSER_BINDING", "DATABASE_URL must be PostgreSQL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	ok := Env{"DROMOS_ENV": "production", "ENCRYPTION_KEY": key32, "STATE_KEY": key32b, "BASE_URL": "https://broker.example.com",
		"REQUIRE_API_KEY": "true", "API_KEYS": "k1-0123456789abcdef", "ENFORCE_RETURN_URL": "true", "ALLOWED_RETURN_DOMAINS": "app.example.com",
		"DATABASE_URL": "postgres://db/dromos"}
	if b, err := LoadBroker(ok); err != nil || !b.Production {
		t.Fatalf("secure production settings refused: %v", err)
	}
	if _, err := LoadGateway(Env{"DROMOS_ENV": "production", "BROKER_BASE_URL": "http://broker:8080", "STATE_KEY": key32,
		"GATEWAY_ALLOW_ANONYMOUS": "true"}); err == nil || !strings.Contains(err.Error(), "GATEWAY_ALLOW_ANONYMOUS must not be set") {
		t.Fatalf("anonymous production gateway: %v", err)
	}
}

// The proxy and rate-limit variables reach the configuration: defaults,
// values and refusals.
func TestLoadBrokerProxiesAndRateLimits(t *testing.T) {
	b, err := LoadBroker(Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b})
	if err != nil {
		t.Fatal(err)
	}
	if b.CallbackRate != 20 || b.ConsentRate != 600 || len(b.TrustedProxies) != 0 {
		t.Fatalf("defaults: callback %d, consent %d, proxies %v", b.CallbackRate, b.ConsentRate, b.TrustedProxies)
	}
	b, err = LoadBroker(Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b,
		"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7", "RATE_LIMIT_CALLBACK": "0", "RATE_LIMIT_CONSENT": "30"})
	if err != nil {
		t.Fatal(err)
	}
	if b.CallbackRate != 0 || b.ConsentRate != 30 || len(b.TrustedProxies) != 2 ||
		b.TrustedProxies[0].String() != "10.0.0.0/8" || b.TrustedProxies[1].String() != "192.168.1.7/32" {
		t.Fatalf("values: callback %d, consent %d, proxies %v", b.CallbackRate, b.ConsentRate, b.TrustedProxies)
	}
	_, err = LoadBroker(Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b,
		"TRUSTED_PROXIES": "not-a-cidr", "RATE_LIMIT_CALLBACK": "-1", "RATE_LIMIT_CONSENT": "lots"})
	if err == nil {
		t.Fatal("bad proxy and rate values accepted")
	}
	for _, want := range []string{"TRUSTED_PROXIES entry 1", "RATE_LIMIT_CALLBACK must be", "RATE_LIMIT_CONSENT must be"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// A key list made only of separators parses to no key at all; it must stop
// the process with a message, not reach the broker as an empty keyring.
func TestEmptyKeyListsAreProblems(t *testing.T) {
	tests := []struct {
		name string
		env  Env
		want []string
	}{
		{"only commas", Env{"ENCRYPTION_KEYS": ",", "STATE_KEYS": " , "},
			[]string{"ENCRYPTION_KEYS holds no key", "STATE_KEYS holds no key"}},
		{"blank entries beside a single key", Env{"ENCRYPTION_KEYS": " ,, ", "STATE_KEY": key32},
			[]string{"ENCRYPTION_KEYS holds no key"}},
		{"nothing set", Env{}, []string{"ENCRYPTION_KEY is required", "STATE_KEY is required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := LoadBroker(tc.env)
			if err == nil {
				t.Fatalf("accepted: %d encryption keys, %d state keys", len(b.EncryptionKeys), len(b.StateKeys))
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("missing %q in %v", want, err)
				}
			}
		})
	}
	// A separator-only list beside a valid single key is still the single key.
	b, err := LoadBroker(Env{"ENCRYPTION_KEYS": ",", "ENCRYPTION_KEY": key32, "STATE_KEY": key32b})
	if err != nil || len(b.EncryptionKeys) != 1 {
		t.Fatalf("single key beside an empty list: %v, %d keys", err, len(b.EncryptionKeys))
	}
	if _, err := LoadGateway(Env{"BROKER_BASE_URL": "http://broker:8080", "STATE_KEYS": " , ", "GATEWAY_ALLOW_ANONYMOUS": "true"}); err == nil ||
		!strings.Contains(err.Error(), "STATE_KEYS holds no key") {
		t.Fatalf("gateway with an empty STATE_KEYS: %v", err)
	}
}

// Every production broker requires an API key, so a production gateway
// without BROKER_API_KEY could only answer 502; it refuses to start.
func TestProductionGatewayNeedsBrokerAPIKey(t *testing.T) {
	env := Env{"DROMOS_ENV": "production", "BROKER_BASE_URL": "https://broker.internal", "STATE_KEY": key32,
		"GATEWAY_API_KEYS": "agent-a:agent-key-0123456789"}
	if _, err := LoadGateway(env); err == nil || !strings.Contains(err.Error(), "DROMOS_ENV=production: BROKER_API_KEY is required") {
		t.Fatalf("production gateway without BROKER_API_KEY: %v", err)
	}
	env["BROKER_API_KEY"] = "broker-key-0123456789"
	if _, err := LoadGateway(env); err != nil {
		t.Fatalf("complete production gateway refused: %v", err)
	}
	delete(env, "DROMOS_ENV")
	delete(env, "BROKER_API_KEY")
	if _, err := LoadGateway(env); err != nil {
		t.Fatalf("development gateway without BROKER_API_KEY refused: %v", err)
	}
}

// internal/database accepts the PostgreSQL schemes in any case; the
// production check must agree with it.
func TestProductionDatabaseSchemeAnyCase(t *testing.T) {
	base := Env{"DROMOS_ENV": "production", "ENCRYPTION_KEY": key32, "STATE_KEY": key32b, "BASE_URL": "https://broker.example.com",
		"REQUIRE_API_KEY": "true", "API_KEYS": "k1-0123456789abcdef", "ENFORCE_RETURN_URL": "true", "ALLOWED_RETURN_DOMAINS": "app.example.com"}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"postgres://db/dromos", true},
		{"POSTGRES://db/dromos", true},
		{"PostgreSQL://db/dromos", true},
		{"sqlite:dromos.db", false},
		{"SQLITE:dromos.db", false},
		{"mysql://db/dromos", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			env := Env{"DATABASE_URL": tc.url}
			for k, v := range base {
				env[k] = v
			}
			_, err := LoadBroker(env)
			refused := err != nil && strings.Contains(err.Error(), "DATABASE_URL must be PostgreSQL")
			if refused == tc.ok {
				t.Fatalf("DATABASE_URL %s: %v", tc.url, err)
			}
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

// --help promises every variable: each name LoadBroker and LoadGateway read
// is in BrokerVars or GatewayVars.
func TestHelpListsEveryVariable(t *testing.T) {
	name := regexp.MustCompile(`[(,]\s*"([A-Z][A-Z0-9_]*)"`)
	for file, help := range map[string]string{"broker.go": BrokerVars, "gateway.go": GatewayVars, "serve.go": ServeVars} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		ms := name.FindAllStringSubmatch(string(src), -1)
		if len(ms) < 5 {
			t.Fatalf("%s: only %d variable names found; the pattern is stale", file, len(ms))
		}
		for _, m := range ms {
			if !regexp.MustCompile(`\b` + m[1] + `\b`).MatchString(help) {
				t.Errorf("%s reads %s but its --help text does not list it", file, m[1])
			}
		}
	}
}

// REDIRECT_PATH and ALLOWED_RETURN_DOMAINS are checked when the
// configuration loads, with the variable named: a callback path on one of
// the broker's own routes used to crash the router at start, and a bad
// domain list was refused later without its name.
func TestRedirectPathAndReturnDomains(t *testing.T) {
	base := func() Env { return Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b} }
	for path, ok := range map[string]bool{
		"/auth/callback": true, "/oauth2/cb": true, "/cb.v1": true,
		"/health": false, "/providers/x": false, "/auth/start": false, "/metrics": false,
		"auth/callback": false, "/cb/{x}": false, "/a b": false, "/a//b": false, "/a/../b": false, "/": false, "/cb?x=1": false,
	} {
		env := base()
		env["REDIRECT_PATH"] = path
		_, err := LoadBroker(env)
		if got := err == nil; got != ok {
			t.Errorf("REDIRECT_PATH=%q: %v, want ok=%v", path, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "REDIRECT_PATH") {
			t.Errorf("REDIRECT_PATH=%q: error does not name the variable: %v", path, err)
		}
	}
	env := base()
	env["ALLOWED_RETURN_DOMAINS"] = "app.example.com,*.com"
	if _, err := LoadBroker(env); err == nil || !strings.Contains(err.Error(), "ALLOWED_RETURN_DOMAINS: allowed domain entry 2") {
		t.Fatalf("a wildcard over a TLD: %v", err)
	}
}

// BASE_URL and BROKER_BASE_URL get paths appended: a query or fragment is
// refused at load (review: BASE_URL with ?x=1 produced the redirect URI
// https://b.example.com/path?x=1/auth/callback).
func TestBaseURLWithoutQuery(t *testing.T) {
	for _, v := range []string{"https://b.example.com/path?x=1", "https://b.example.com/#f", "https://b.example.com/?"} {
		_, err := LoadBroker(Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b, "BASE_URL": v})
		if err == nil || !strings.Contains(err.Error(), "BASE_URL must be") {
			t.Errorf("BASE_URL=%q: %v", v, err)
		}
		_, err = LoadGateway(Env{"BROKER_BASE_URL": v, "STATE_KEY": key32, "GATEWAY_ALLOW_ANONYMOUS": "true"})
		if err == nil || !strings.Contains(err.Error(), "BROKER_BASE_URL must be") {
			t.Errorf("BROKER_BASE_URL=%q: %v", v, err)
		}
	}
	if b, err := LoadBroker(Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b, "BASE_URL": "https://b.example.com/dromos/"}); err != nil ||
		b.RedirectURI() != "https://b.example.com/dromos/auth/callback" {
		t.Fatalf("a base path: %v %q", err, b.RedirectURI())
	}
}

// MAX_CONNECTIONS is read by both services; unset means "derive from the
// open-file limit" (0), and a value that is not a count stops the start.
func TestMaxConnections(t *testing.T) {
	base := Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b, "BROKER_BASE_URL": "http://broker:8080", "GATEWAY_ALLOW_ANONYMOUS": "true"}
	with := func(v string) Env {
		e := Env{}
		for k, x := range base {
			e[k] = x
		}
		if v != "" {
			e["MAX_CONNECTIONS"] = v
		}
		return e
	}
	b, err := LoadBroker(with(""))
	if err != nil || b.MaxConnections != 0 {
		t.Fatalf("broker default: %d, %v", b.MaxConnections, err)
	}
	g, err := LoadGateway(with("500"))
	if err != nil || g.MaxConnections != 500 {
		t.Fatalf("gateway 500: %d, %v", g.MaxConnections, err)
	}
	for _, bad := range []string{"-1", "many", "2000000"} {
		if _, err := LoadBroker(with(bad)); err == nil || !strings.Contains(err.Error(), "MAX_CONNECTIONS must be") {
			t.Errorf("broker MAX_CONNECTIONS=%s: %v", bad, err)
		}
		if _, err := LoadGateway(with(bad)); err == nil || !strings.Contains(err.Error(), "MAX_CONNECTIONS must be") {
			t.Errorf("gateway MAX_CONNECTIONS=%s: %v", bad, err)
		}
	}
}

// A variable that is set but does not parse is reported as invalid, never
// as missing: "needs API_KEYS" beside "API_KEYS entry 1: …" sends the
// operator looking for a variable that is there.
func TestSetButInvalidIsNotMissing(t *testing.T) {
	base := func(kv ...string) Env {
		env := Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b}
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	tests := []struct {
		name      string
		load      func() error
		want, not string
	}{
		{"malformed API_KEYS", func() error {
			_, err := LoadBroker(base("REQUIRE_API_KEY", "true", "API_KEYS", "short"))
			return err
		}, "API_KEYS entry 1: a plain key must be at least", "needs API_KEY"},
		{"malformed API_KEY", func() error {
			_, err := LoadBroker(base("REQUIRE_API_KEY", "true", "API_KEY", "sha256:zz"))
			return err
		}, "API_KEY entry 1: sha256: must be followed", "needs API_KEY"},
		{"separators only", func() error {
			_, err := LoadBroker(base("REQUIRE_API_KEY", "true", "API_KEYS", " , "))
			return err
		}, "needs a valid API_KEYS; it holds no entry", "needs API_KEY or API_KEYS"},
		{"malformed ALLOWED_CIDRS", func() error {
			_, err := LoadBroker(base("REQUIRE_ALLOWLIST", "true", "ALLOWED_CIDRS", "10.0.0.0/99"))
			return err
		}, "ALLOWED_CIDRS entry 1 is not a CIDR", "needs ALLOWED_CIDRS"},
		{"malformed GATEWAY_API_KEYS in production", func() error {
			_, err := LoadGateway(Env{"DROMOS_ENV": "production", "BROKER_BASE_URL": "https://broker.internal",
				"STATE_KEY": key32, "BROKER_API_KEY": "0123456789abcdef0123", "GATEWAY_API_KEYS": "no-colon-here"})
			return err
		}, "GATEWAY_API_KEYS:", "needs GATEWAY_API_KEYS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.load()
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want %q in %v", tc.want, err)
			}
			if strings.Contains(err.Error(), tc.not) || strings.Contains(err.Error(), "is required") {
				t.Errorf("a set variable reported as missing: %v", err)
			}
		})
	}
	// Unset is still reported as missing.
	if _, err := LoadBroker(base("REQUIRE_API_KEY", "true")); err == nil || !strings.Contains(err.Error(), "REQUIRE_API_KEY=true needs API_KEY or API_KEYS") {
		t.Fatalf("unset API keys: %v", err)
	}
}

// Configuring broker keys means requiring them: keys without
// REQUIRE_API_KEY used to leave every route, tokens included, open.
func TestBrokerKeysImplyRequired(t *testing.T) {
	base := func(extra Env) Env {
		env := Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	for _, tc := range []struct {
		name    string
		env     Env
		require bool
	}{
		{"API_KEYS alone", Env{"API_KEYS": "k1-0123456789abcdef"}, true},
		{"API_KEY alone", Env{"API_KEY": "k1-0123456789abcdef"}, true},
		{"keys and true", Env{"API_KEYS": "k1-0123456789abcdef", "REQUIRE_API_KEY": "true"}, true},
		{"no keys", Env{}, false},
		{"no keys, false", Env{"REQUIRE_API_KEY": "false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := LoadBroker(base(tc.env))
			if err != nil {
				t.Fatalf("LoadBroker: %v", err)
			}
			if b.RequireAPIKey != tc.require {
				t.Fatalf("RequireAPIKey = %v, want %v", b.RequireAPIKey, tc.require)
			}
		})
	}
	t.Run("keys with REQUIRE_API_KEY=false", func(t *testing.T) {
		_, err := LoadBroker(base(Env{"API_KEYS": "k1-0123456789abcdef", "REQUIRE_API_KEY": "false"}))
		if err == nil || !strings.Contains(err.Error(), "REQUIRE_API_KEY=false with API_KEY or API_KEYS set") {
			t.Fatalf("err = %v, want the keys-without-requiring problem", err)
		}
		if strings.Contains(err.Error(), "k1-0123456789abcdef") {
			t.Fatal("error echoes a key")
		}
	})
}

func TestGatewayConsentRateDefault(t *testing.T) {
	base := Env{"BROKER_BASE_URL": "http://broker:8080", "STATE_KEY": key32, "GATEWAY_API_KEYS": "agent-a:agent-key-0123456789"}
	g, err := LoadGateway(base)
	if err != nil || g.ConsentRate != 60 {
		t.Fatalf("default consent rate = %d, %v; want 60", g.ConsentRate, err)
	}
	base["GATEWAY_CONSENT_RATE_LIMIT"] = "0"
	if g, err := LoadGateway(base); err != nil || g.ConsentRate != 0 {
		t.Fatalf("0 = %d, %v; want off", g.ConsentRate, err)
	}
	base["GATEWAY_CONSENT_RATE_LIMIT"] = "lots"
	if _, err := LoadGateway(base); err == nil || !strings.Contains(err.Error(), "GATEWAY_CONSENT_RATE_LIMIT") {
		t.Fatalf("bad value: %v", err)
	}
}

func TestBrokerConnectionLimitsDefaults(t *testing.T) {
	env := Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b}
	b, err := LoadBroker(env)
	if err != nil || b.MaxPendingPerClient != 100 || b.ConnectionRetention != 168*time.Hour {
		t.Fatalf("defaults: %d %v %v", b.MaxPendingPerClient, b.ConnectionRetention, err)
	}
	env["MAX_PENDING_PER_CLIENT"], env["CONNECTION_RETENTION"] = "0", "0"
	if b, err := LoadBroker(env); err != nil || b.MaxPendingPerClient != 0 || b.ConnectionRetention != 0 {
		t.Fatalf("off: %d %v %v", b.MaxPendingPerClient, b.ConnectionRetention, err)
	}
	env["MAX_PENDING_PER_CLIENT"], env["CONNECTION_RETENTION"] = "-1", "a week"
	_, err = LoadBroker(env)
	if err == nil || !strings.Contains(err.Error(), "MAX_PENDING_PER_CLIENT") || !strings.Contains(err.Error(), "CONNECTION_RETENTION") {
		t.Fatalf("bad values: %v", err)
	}
}

// A state key equal to an encryption key is refused in every mode: whoever
// holds the state key would also open every sealed token.
func TestStateKeyMustDifferFromEncryptionKeys(t *testing.T) {
	for _, env := range []Env{
		{"ENCRYPTION_KEY": key32, "STATE_KEY": key32},
		{"ENCRYPTION_KEYS": "2:" + key32b + ",1:" + key32, "STATE_KEYS": "3:" + key32c + ",4:" + key32b},
		{"ENCRYPTION_KEY": key32, "STATE_KEY": key32, "DROMOS_ENV": "production"},
	} {
		_, err := LoadBroker(env)
		if err == nil || !strings.Contains(err.Error(), "must be different keys") {
			t.Errorf("LoadBroker(%v) = %v, want the equal keys refused", env, err)
		}
		if err != nil && (strings.Contains(err.Error(), key32) || strings.Contains(err.Error(), key32b)) {
			t.Errorf("error names a key: %v", err)
		}
	}
}

// The gateway takes public keys; given the broker's seed it derives them;
// given both it refuses.
func TestGatewayStatePublicKeys(t *testing.T) {
	base := Env{"BROKER_BASE_URL": "http://broker:8080", "GATEWAY_ALLOW_ANONYMOUS": "true"}
	with := func(kv ...string) Env {
		e := Env{}
		for k, v := range base {
			e[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			e[kv[i]] = kv[i+1]
		}
		return e
	}
	g, err := LoadGateway(with("STATE_PUBLIC_KEYS", "2:"+key32b+",1:"+key32))
	if err != nil || len(g.StatePublicKeys) != 2 || g.StatePublicKeys[0].ID != 2 || len(g.StateKeys) != 0 {
		t.Fatalf("STATE_PUBLIC_KEYS: %+v, %v", g, err)
	}
	g, err = LoadGateway(with("STATE_KEY", key32))
	if err != nil || len(g.StateKeys) != 1 || len(g.StatePublicKeys) != 0 {
		t.Fatalf("STATE_KEY: %+v, %v", g, err)
	}
	if _, err := LoadGateway(with("STATE_PUBLIC_KEYS", "1:"+key32, "STATE_KEY", key32b)); err == nil ||
		!strings.Contains(err.Error(), "must not be set with STATE_PUBLIC_KEYS") {
		t.Fatalf("both: %v", err)
	}
	if _, err := LoadGateway(base); err == nil || !strings.Contains(err.Error(), "STATE_PUBLIC_KEYS is required") {
		t.Fatalf("neither: %v", err)
	}
}

func TestBrokerRefreshAheadReadWindow(t *testing.T) {
	env := Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b}
	if b, err := LoadBroker(env); err != nil || b.RefreshAheadReadWindow != time.Hour {
		t.Fatalf("default: %v %v, want 1h", b.RefreshAheadReadWindow, err)
	}
	env["REFRESH_AHEAD_READ_WINDOW"] = "15m"
	if b, err := LoadBroker(env); err != nil || b.RefreshAheadReadWindow != 15*time.Minute {
		t.Fatalf("15m: %v %v", b.RefreshAheadReadWindow, err)
	}
	for _, bad := range []string{"0", "-1h", "an hour"} {
		env["REFRESH_AHEAD_READ_WINDOW"] = bad
		if _, err := LoadBroker(env); err == nil || !strings.Contains(err.Error(), "REFRESH_AHEAD_READ_WINDOW") {
			t.Fatalf("%q: %v, want a REFRESH_AHEAD_READ_WINDOW problem", bad, err)
		}
	}
}

func TestBrokerTokenCacheStaleness(t *testing.T) {
	env := Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b}
	if b, err := LoadBroker(env); err != nil || b.TokenCacheStaleness != 500*time.Millisecond {
		t.Fatalf("default: %v %v, want 500ms", b.TokenCacheStaleness, err)
	}
	for in, want := range map[string]time.Duration{"0": 0, "2s": 2 * time.Second, "10s": 10 * time.Second} {
		env["TOKEN_CACHE_STALENESS"] = in
		if b, err := LoadBroker(env); err != nil || b.TokenCacheStaleness != want {
			t.Fatalf("%s: %v %v", in, b.TokenCacheStaleness, err)
		}
	}
	for _, bad := range []string{"-1s", "11s", "soon"} {
		env["TOKEN_CACHE_STALENESS"] = bad
		if _, err := LoadBroker(env); err == nil || !strings.Contains(err.Error(), "TOKEN_CACHE_STALENESS") {
			t.Fatalf("%q: %v, want a TOKEN_CACHE_STALENESS problem", bad, err)
		}
	}
}
