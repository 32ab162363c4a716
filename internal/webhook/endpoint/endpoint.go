package endpoint

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/dromos-dev/dromos/internal/netguard"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/vault"
	"github.com/dromos-dev/dromos/internal/webhook"
)

// Errors of Manager calls; the HTTP layer maps them to the error envelope.
var (
	// ErrBadURL: the URL is malformed or points at an address the SSRF
	// guard refuses.
	ErrBadURL = errors.New("endpoint: unacceptable webhook URL")
	// ErrBadEvents: an event type in the filter is unknown.
	ErrBadEvents = errors.New("endpoint: unknown event type")
	// ErrTooMany: the owner already has MaxPerOwner endpoints.
	ErrTooMany = errors.New("endpoint: too many webhook endpoints")
)

// Defaults of Config.
const (
	DefaultRotationWindow = 24 * time.Hour
	DefaultMaxPerOwner    = 20
)

// Config tunes a Manager.
type Config struct {
	// AllowPrivate lets endpoint URLs use http and resolve to loopback or
	// private addresses (development). It MUST be false in production.
	AllowPrivate bool
	// RotationWindow is how long a rotated-out secret keeps signing.
	RotationWindow time.Duration
	// MaxPerOwner caps the endpoints of one owner.
	MaxPerOwner int
}

// Deps are a Manager's collaborators.
type Deps struct {
	Store    storage.Storage
	Vault    *vault.Keyring
	Resolver *net.Resolver // nil: net.DefaultResolver
	Now      func() time.Time
	Rand     io.Reader // nil: crypto/rand
	Logger   *slog.Logger
	// Audit records the API's changes (nil: not recorded).
	Audit func(*http.Request, storage.AuditEvent)
}

// Manager manages webhook endpoints. Safe for concurrent use.
type Manager struct {
	cfg Config
	d   Deps
}

// New returns a Manager.
func New(cfg Config, d Deps) (*Manager, error) {
	if d.Store == nil || d.Vault == nil {
		return nil, errors.New("endpoint: Store and Vault are required")
	}
	if cfg.RotationWindow <= 0 {
		cfg.RotationWindow = DefaultRotationWindow
	}
	if cfg.MaxPerOwner <= 0 {
		cfg.MaxPerOwner = DefaultMaxPerOwner
	}
	if d.Resolver == nil {
		d.Resolver = net.DefaultResolver
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Audit == nil {
		d.Audit = func(*http.Request, storage.AuditEvent) {}
	}
	return &Manager{cfg: cfg, d: d}, nil
}

// Scope is who is calling: an agent (Owner set) sees only its own
// endpoints; an operator (Operator true, Owner empty) sees all and creates
// global ones.
type Scope struct {
	Owner    string
	Operator bool
}

func (s Scope) sees(e storage.WebhookEndpoint) bool {
	return s.Operator || (s.Owner != "" && e.Owner == s.Owner)
}

// SecretAAD is the additional data an endpoint's secrets are sealed with:
// it binds a sealed secret to its endpoint, so a ciphertext copied to
// another endpoint's row does not open. Key rotation re-seals with it.
func SecretAAD(id string) []byte { return []byte("dromos.webhook-endpoint.v1:" + id) }

// CheckURL judges an endpoint URL: shape first, then (without
// AllowPrivate) where its host resolves. Delivery checks every dial again.
func (m *Manager) CheckURL(ctx context.Context, raw string) error {
	if err := netguard.CheckURL(raw, m.cfg.AllowPrivate); err != nil {
		return fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	if m.cfg.AllowPrivate {
		return nil
	}
	u, _ := url.Parse(raw)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := netguard.CheckHost(cctx, m.d.Resolver, u.Hostname()); err != nil {
		return fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	return nil
}

func checkEvents(events []string) ([]string, error) {
	var out []string
	for _, e := range events {
		if !webhook.EventType(e).Valid() {
			return nil, fmt.Errorf("%w %q", ErrBadEvents, e)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Create registers an endpoint for the scope's owner ("" for an operator:
// global) and returns it with its secret, which is never shown again.
func (m *Manager) Create(ctx context.Context, sc Scope, rawURL string, events []string) (storage.WebhookEndpoint, webhook.Secret, error) {
	evs, err := checkEvents(events)
	if err != nil {
		return storage.WebhookEndpoint{}, webhook.Secret{}, err
	}
	if err := m.CheckURL(ctx, rawURL); err != nil {
		return storage.WebhookEndpoint{}, webhook.Secret{}, err
	}
	existing, err := m.d.Store.ListWebhookEndpoints(ctx, storage.WebhookEndpointFilter{Owner: sc.Owner})
	if err != nil {
		return storage.WebhookEndpoint{}, webhook.Secret{}, err
	}
	if len(existing) >= m.cfg.MaxPerOwner {
		return storage.WebhookEndpoint{}, webhook.Secret{}, ErrTooMany
	}
	secret, err := webhook.NewSecret(m.d.Rand)
	if err != nil {
		return storage.WebhookEndpoint{}, webhook.Secret{}, err
	}
	id := storage.NewWebhookID("ep_")
	sealed, err := m.d.Vault.Seal([]byte(secret.Reveal()), SecretAAD(id))
	if err != nil {
		return storage.WebhookEndpoint{}, webhook.Secret{}, fmt.Errorf("endpoint: seal secret: %w", err)
	}
	now := m.d.Now().UTC()
	e := storage.WebhookEndpoint{ID: id, Owner: sc.Owner, URL: rawURL, Events: evs, Secret: sealed,
		Enabled: true, CreatedAt: now, UpdatedAt: now}
	if err := m.d.Store.CreateWebhookEndpoint(ctx, e); err != nil {
		return storage.WebhookEndpoint{}, webhook.Secret{}, err
	}
	return e, secret, nil
}

// List returns the scope's endpoints (an operator's: every endpoint).
func (m *Manager) List(ctx context.Context, sc Scope) ([]storage.WebhookEndpoint, error) {
	return m.d.Store.ListWebhookEndpoints(ctx, storage.WebhookEndpointFilter{Owner: sc.Owner, AnyOwner: sc.Operator})
}

// Get returns an endpoint the scope sees; any other is storage.ErrNotFound,
// so an agent cannot even learn that another agent's endpoint exists.
func (m *Manager) Get(ctx context.Context, sc Scope, id string) (storage.WebhookEndpoint, error) {
	e, err := m.d.Store.GetWebhookEndpoint(ctx, id)
	if err != nil {
		return storage.WebhookEndpoint{}, err
	}
	if !sc.sees(e) {
		return storage.WebhookEndpoint{}, fmt.Errorf("endpoint %q: %w", id, storage.ErrNotFound)
	}
	return e, nil
}

// Delete removes an endpoint the scope sees, with its deliveries.
func (m *Manager) Delete(ctx context.Context, sc Scope, id string) error {
	if _, err := m.Get(ctx, sc, id); err != nil {
		return err
	}
	return m.d.Store.DeleteWebhookEndpoint(ctx, id)
}

// update runs fn on an endpoint the scope sees.
func (m *Manager) update(ctx context.Context, sc Scope, id string, fn func(storage.WebhookEndpoint) (storage.WebhookEndpoint, error)) (storage.WebhookEndpoint, error) {
	return m.d.Store.UpdateWebhookEndpoint(ctx, id, func(e storage.WebhookEndpoint) (storage.WebhookEndpoint, error) {
		if !sc.sees(e) {
			return e, fmt.Errorf("endpoint %q: %w", id, storage.ErrNotFound)
		}
		return fn(e)
	})
}

// RotateSecret gives the endpoint a new secret and returns it; the current
// one keeps signing (messages carry both signatures) for RotationWindow.
func (m *Manager) RotateSecret(ctx context.Context, sc Scope, id string) (storage.WebhookEndpoint, webhook.Secret, error) {
	secret, err := webhook.NewSecret(m.d.Rand)
	if err != nil {
		return storage.WebhookEndpoint{}, webhook.Secret{}, err
	}
	sealed, err := m.d.Vault.Seal([]byte(secret.Reveal()), SecretAAD(id))
	if err != nil {
		return storage.WebhookEndpoint{}, webhook.Secret{}, fmt.Errorf("endpoint: seal secret: %w", err)
	}
	now := m.d.Now().UTC()
	e, err := m.update(ctx, sc, id, func(e storage.WebhookEndpoint) (storage.WebhookEndpoint, error) {
		e.PreviousSecret, e.PreviousSecretUntil = e.Secret, now.Add(m.cfg.RotationWindow)
		e.Secret, e.UpdatedAt = sealed, now
		return e, nil
	})
	if err != nil {
		return storage.WebhookEndpoint{}, webhook.Secret{}, err
	}
	return e, secret, nil
}

// Enable re-enables an endpoint; its pending deliveries are replayed at
// once, in order.
func (m *Manager) Enable(ctx context.Context, sc Scope, id string) (storage.WebhookEndpoint, error) {
	now := m.d.Now().UTC()
	return m.update(ctx, sc, id, func(e storage.WebhookEndpoint) (storage.WebhookEndpoint, error) {
		if !e.Enabled {
			e.Enabled, e.DisabledReason, e.FailingSince, e.UpdatedAt = true, "", time.Time{}, now
		}
		return e, nil
	})
}

// Deliveries returns an endpoint's deliveries, newest first.
func (m *Manager) Deliveries(ctx context.Context, sc Scope, id string, limit int) ([]storage.WebhookDelivery, error) {
	if _, err := m.Get(ctx, sc, id); err != nil {
		return nil, err
	}
	return m.d.Store.ListWebhookDeliveries(ctx, id, limit)
}

// Retry makes one of the endpoint's deliveries due again now.
func (m *Manager) Retry(ctx context.Context, sc Scope, id, deliveryID string) (storage.WebhookDelivery, error) {
	if _, err := m.Get(ctx, sc, id); err != nil {
		return storage.WebhookDelivery{}, err
	}
	return m.d.Store.RetryWebhookDelivery(ctx, id, deliveryID, m.d.Now().UTC())
}

// Secrets opens the endpoint's signing secrets: the current one, and the
// previous one while its rotation window lasts.
func (m *Manager) Secrets(e storage.WebhookEndpoint, now time.Time) ([]webhook.Secret, error) {
	cur, err := m.open(e.ID, e.Secret)
	if err != nil {
		return nil, err
	}
	out := []webhook.Secret{cur}
	if len(e.PreviousSecret) > 0 && now.Before(e.PreviousSecretUntil) {
		prev, err := m.open(e.ID, e.PreviousSecret)
		if err != nil {
			return nil, err
		}
		out = append(out, prev)
	}
	return out, nil
}

func (m *Manager) open(id string, sealed []byte) (webhook.Secret, error) {
	plain, err := m.d.Vault.Open(sealed, SecretAAD(id))
	if err != nil {
		return webhook.Secret{}, fmt.Errorf("endpoint %q: open secret: %w", id, err)
	}
	return webhook.ParseSecret(string(plain))
}
