package storagetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

func newEndpoint(id, owner string, events ...string) storage.WebhookEndpoint {
	t := baseTime()
	return storage.WebhookEndpoint{
		ID: id, Owner: owner, URL: "https://hooks.example.com/" + id, Events: events,
		Secret: []byte{0x01, 0x00, 0xff, byte(len(id))}, Enabled: true, CreatedAt: t, UpdatedAt: t,
	}
}

func createEndpoint(t *testing.T, s storage.Storage, e storage.WebhookEndpoint) {
	t.Helper()
	must(t, "CreateWebhookEndpoint "+e.ID, s.CreateWebhookEndpoint(t.Context(), e))
}

// setStatus moves a connection to status (with reason) through
// UpdateConnection, stamping UpdatedAt with at.
func setStatus(t *testing.T, s storage.Storage, id string, status storage.ConnectionStatus, reason string, at time.Time) {
	t.Helper()
	_, err := s.UpdateConnection(t.Context(), id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		c.Status, c.StatusReason, c.UpdatedAt = status, reason, at
		return c, storage.TokenChange{}, nil
	})
	must(t, fmt.Sprintf("UpdateConnection %s -> %s", id, status), err)
}

func eventTypes(t *testing.T, s storage.Storage, connID string) []storage.LifecycleType {
	t.Helper()
	evs, err := s.ListLifecycleEvents(t.Context(), connID)
	must(t, "ListLifecycleEvents", err)
	var out []storage.LifecycleType
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Errorf("event %d of %s has seq %d, want %d", i, connID, ev.Seq, i+1)
		}
		out = append(out, ev.Type)
	}
	return out
}

func claimIDs(t *testing.T, s storage.Storage, owner string, now time.Time) []storage.ClaimedDelivery {
	t.Helper()
	cds, err := s.ClaimWebhookDeliveries(t.Context(), owner, now, now.Add(time.Minute), 100)
	must(t, "ClaimWebhookDeliveries", err)
	return cds
}

// sameTime compares to the microsecond, what every backend keeps.
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

func runWebhooks(t *testing.T, open func(t *testing.T) storage.Storage) {
	t.Run("EndpointRoundTrip", func(t *testing.T) {
		s := open(t)
		e := newEndpoint("we-1", "agent-a", "connection.active", "connection.deleted")
		e.PreviousSecret, e.PreviousSecretUntil = []byte{9, 8, 7}, baseTime().Add(24*time.Hour)
		e.FailingSince = baseTime().Add(time.Minute)
		createEndpoint(t, s, e)
		wantErr(t, "duplicate id", s.CreateWebhookEndpoint(t.Context(), e), storage.ErrAlreadyExists)
		got, err := s.GetWebhookEndpoint(t.Context(), "we-1")
		must(t, "GetWebhookEndpoint", err)
		checkEqual(t, "endpoint", got, e)
		createEndpoint(t, s, newEndpoint("we-2", ""))
		createEndpoint(t, s, newEndpoint("we-3", "agent-b"))
		for _, tc := range []struct {
			f    storage.WebhookEndpointFilter
			want []string
		}{
			{storage.WebhookEndpointFilter{Owner: "agent-a"}, []string{"we-1"}},
			{storage.WebhookEndpointFilter{Owner: ""}, []string{"we-2"}},
			{storage.WebhookEndpointFilter{AnyOwner: true}, []string{"we-1", "we-2", "we-3"}},
		} {
			es, err := s.ListWebhookEndpoints(t.Context(), tc.f)
			must(t, "ListWebhookEndpoints", err)
			var ids []string
			for _, e := range es {
				ids = append(ids, e.ID)
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("ListWebhookEndpoints(%+v) = %v, want %v", tc.f, ids, tc.want)
			}
		}
		up, err := s.UpdateWebhookEndpoint(t.Context(), "we-1", func(e storage.WebhookEndpoint) (storage.WebhookEndpoint, error) {
			e.Owner, e.Secret, e.Enabled, e.DisabledReason = "agent-z", []byte{4, 4}, false, "operator"
			return e, nil
		})
		must(t, "UpdateWebhookEndpoint", err)
		if up.Owner != "agent-a" || up.Enabled || up.DisabledReason != "operator" || !slices.Equal(up.Secret, []byte{4, 4}) {
			t.Errorf("after update: %+v (owner must be kept, the rest written)", up)
		}
		_, err = s.UpdateWebhookEndpoint(t.Context(), "we-1", func(e storage.WebhookEndpoint) (storage.WebhookEndpoint, error) {
			e.URL = "https://changed.example.com"
			return e, errBoom
		})
		wantErr(t, "failing closure", err, errBoom)
		if got, _ := s.GetWebhookEndpoint(t.Context(), "we-1"); got.URL != e.URL {
			t.Errorf("a failed update wrote the URL %q", got.URL)
		}
		must(t, "DeleteWebhookEndpoint", s.DeleteWebhookEndpoint(t.Context(), "we-1"))
		_, err = s.GetWebhookEndpoint(t.Context(), "we-1")
		wantErr(t, "get deleted endpoint", err, storage.ErrNotFound)
		wantErr(t, "delete twice", s.DeleteWebhookEndpoint(t.Context(), "we-1"), storage.ErrNotFound)
	})

	t.Run("EventIffCommitted", func(t *testing.T) {
		s := open(t)
		createEndpoint(t, s, newEndpoint("own", "agent-a"))
		createEndpoint(t, s, newEndpoint("global", ""))
		createEndpoint(t, s, newEndpoint("other", "agent-b"))
		createEndpoint(t, s, newEndpoint("only-deleted", "agent-a", "connection.deleted"))
		c := newConnection("conn-1")
		c.LastErrorClass = ""
		createConnection(t, s, c)
		t0 := baseTime().Add(time.Hour)

		// A closure that fails writes no event.
		_, err := s.UpdateConnection(t.Context(), "conn-1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			c.Status = storage.StatusActive
			return c, storage.TokenChange{}, errBoom
		})
		wantErr(t, "failing closure", err, errBoom)
		if got := eventTypes(t, s, "conn-1"); len(got) != 0 {
			t.Fatalf("events after a rolled back update: %v", got)
		}
		// A change that is not a lifecycle event writes none.
		setStatus(t, s, "conn-1", storage.StatusExchanging, "", t0)
		setStatus(t, s, "conn-1", storage.StatusActive, "", t0.Add(time.Second))
		// Same status, same scopes: nothing.
		setStatus(t, s, "conn-1", storage.StatusActive, "", t0.Add(2*time.Second))
		_, err = s.UpdateConnection(t.Context(), "conn-1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			c.Scopes, c.UpdatedAt = append(c.Scopes, "calendar"), t0.Add(3*time.Second)
			return c, storage.TokenChange{}, nil
		})
		must(t, "add a scope", err)
		setStatus(t, s, "conn-1", storage.StatusExpired, "invalid_grant", t0.Add(4*time.Second))
		setStatus(t, s, "conn-1", storage.StatusRevoked, "deleted", t0.Add(5*time.Second))
		must(t, "DeleteConnection", s.DeleteConnection(t.Context(), "conn-1"))
		wantErr(t, "delete twice", s.DeleteConnection(t.Context(), "conn-1"), storage.ErrNotFound)

		want := []storage.LifecycleType{storage.LifecycleActive, storage.LifecycleScopesChanged,
			storage.LifecycleReauthRequired, storage.LifecycleDeleted}
		if got := eventTypes(t, s, "conn-1"); !slices.Equal(got, want) {
			t.Fatalf("events = %v, want %v", got, want)
		}
		evs, err := s.ListLifecycleEvents(t.Context(), "conn-1")
		must(t, "ListLifecycleEvents", err)
		reauth := evs[2]
		checkUTC(t, reauth)
		if reauth.Status != storage.StatusExpired || reauth.Reason != "invalid_grant" || reauth.ClientName != "agent-a" ||
			reauth.UserID != "user-1" || reauth.ProviderName != "google" || reauth.WorkspaceID != "ws-1" ||
			!sameTime(reauth.OccurredAt, t0.Add(4*time.Second)) || !sameTime(reauth.ConnectionCreatedAt, c.CreatedAt) ||
			len(reauth.Scopes) != 4 {
			t.Errorf("reauth_required event = %+v", reauth)
		}
		if d := evs[3]; d.Status != storage.StatusRevoked || d.Reason != "deleted" || d.ID == evs[2].ID || len(d.ID) != 26 {
			t.Errorf("deleted event = %+v", d)
		}

		count := func(endpoint string) int {
			ds, err := s.ListWebhookDeliveries(t.Context(), endpoint, 0)
			must(t, "ListWebhookDeliveries", err)
			return len(ds)
		}
		for ep, want := range map[string]int{"own": 4, "global": 4, "other": 0, "only-deleted": 1} {
			if got := count(ep); got != want {
				t.Errorf("endpoint %s has %d deliveries, want %d", ep, got, want)
			}
		}
	})

	t.Run("RecoveredAndFailed", func(t *testing.T) {
		s := open(t)
		c := newConnection("conn-r")
		c.Status, c.LastErrorClass = storage.StatusActive, "transient"
		createConnection(t, s, c)
		_, err := s.UpdateConnection(t.Context(), "conn-r", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			c.LastErrorClass, c.LastRefreshAt = "", c.LastRefreshAt.Add(time.Hour)
			return c, storage.TokenChange{}, nil
		})
		must(t, "clear the error", err)
		createConnection(t, s, newConnection("conn-f"))
		setStatus(t, s, "conn-f", storage.StatusFailed, "access_denied", baseTime())
		if got := eventTypes(t, s, "conn-r"); !slices.Equal(got, []storage.LifecycleType{storage.LifecycleRecovered}) {
			t.Errorf("conn-r events = %v, want recovered", got)
		}
		if got := eventTypes(t, s, "conn-f"); !slices.Equal(got, []storage.LifecycleType{storage.LifecycleFailed}) {
			t.Errorf("conn-f events = %v, want failed", got)
		}
	})

	t.Run("ClaimInOrder", func(t *testing.T) {
		s := open(t)
		createEndpoint(t, s, newEndpoint("ep", "agent-a"))
		createConnection(t, s, newConnection("conn-1"))
		t0 := baseTime().Add(time.Hour)
		setStatus(t, s, "conn-1", storage.StatusActive, "", t0)
		setStatus(t, s, "conn-1", storage.StatusExpired, "invalid_grant", t0.Add(time.Second))
		now := t0.Add(time.Minute)

		cds := claimIDs(t, s, "b1", now)
		if len(cds) != 1 || cds[0].Event.Seq != 1 || cds[0].Endpoint.ID != "ep" || cds[0].Event.Type != storage.LifecycleActive {
			t.Fatalf("first claim = %+v, want only seq 1", cds)
		}
		first := cds[0].Delivery
		if again := claimIDs(t, s, "b2", now); len(again) != 0 {
			t.Fatalf("a leased delivery or its successor was claimed again: %+v", again)
		}
		_, err := s.FinishWebhookAttempt(t.Context(), first.ID, storage.WebhookAttempt{Owner: "b2", At: now, Delivered: true})
		wantErr(t, "finish by a non-owner", err, storage.ErrNotFound)
		_, err = s.FinishWebhookAttempt(t.Context(), first.ID, storage.WebhookAttempt{Owner: "b1", At: now,
			StatusCode: 500, Latency: 1500 * time.Millisecond, Error: "status", NextAttemptAt: now.Add(time.Minute)})
		must(t, "finish failed attempt", err)
		if got := claimIDs(t, s, "b1", now.Add(30*time.Second)); len(got) != 0 {
			t.Fatalf("claimed before the retry time or out of order: %+v", got)
		}
		cds = claimIDs(t, s, "b1", now.Add(time.Minute))
		if len(cds) != 1 || cds[0].Delivery.ID != first.ID || cds[0].Delivery.Attempts != 1 ||
			cds[0].Delivery.LastStatusCode != 500 || cds[0].Delivery.LastLatency != 1500*time.Millisecond {
			t.Fatalf("retry claim = %+v", cds)
		}
		_, err = s.FinishWebhookAttempt(t.Context(), first.ID, storage.WebhookAttempt{Owner: "b1", At: now.Add(time.Minute), StatusCode: 204, Delivered: true})
		must(t, "finish delivered", err)
		cds = claimIDs(t, s, "b1", now.Add(time.Minute))
		if len(cds) != 1 || cds[0].Event.Seq != 2 || cds[0].Event.Type != storage.LifecycleReauthRequired {
			t.Fatalf("after seq 1 was delivered, claim = %+v, want seq 2", cds)
		}
		// A lease that ran out is claimed by another replica.
		later := now.Add(3 * time.Minute)
		cds2 := claimIDs(t, s, "b2", later)
		if len(cds2) != 1 || cds2[0].Delivery.ID != cds[0].Delivery.ID {
			t.Fatalf("expired lease not reclaimed: %+v", cds2)
		}
		_, err = s.FinishWebhookAttempt(t.Context(), cds2[0].Delivery.ID, storage.WebhookAttempt{Owner: "b1", At: later, Delivered: true})
		wantErr(t, "finish by the claimer whose lease ran out", err, storage.ErrNotFound)
		_, err = s.FinishWebhookAttempt(t.Context(), cds2[0].Delivery.ID, storage.WebhookAttempt{Owner: "b2", At: later, GiveUp: true, StatusCode: 500})
		must(t, "give up", err)
		ds, err := s.ListWebhookDeliveries(t.Context(), "ep", 0)
		must(t, "ListWebhookDeliveries", err)
		if len(ds) != 2 || ds[0].State != storage.DeliveryFailed || ds[1].State != storage.DeliveryDelivered ||
			!ds[0].NextAttemptAt.IsZero() || ds[1].DeliveredAt.IsZero() {
			t.Fatalf("deliveries = %+v", ds)
		}
		if n, _, err := s.WebhookQueueStats(t.Context()); err != nil || n != 0 {
			t.Fatalf("queue depth = %d, %v; want 0", n, err)
		}
		// A retry makes it pending and due again.
		d, err := s.RetryWebhookDelivery(t.Context(), "ep", ds[0].ID, later)
		must(t, "RetryWebhookDelivery", err)
		if d.State != storage.DeliveryPending || d.Attempts != 0 {
			t.Errorf("retried delivery = %+v", d)
		}
		_, err = s.RetryWebhookDelivery(t.Context(), "other-endpoint", ds[0].ID, later)
		wantErr(t, "retry through another endpoint", err, storage.ErrNotFound)
		if got := claimIDs(t, s, "b1", later); len(got) != 1 || got[0].Delivery.ID != ds[0].ID {
			t.Fatalf("claim after retry = %+v", got)
		}
	})

	t.Run("DisableAndReplay", func(t *testing.T) {
		s := open(t)
		createEndpoint(t, s, newEndpoint("ep", ""))
		createConnection(t, s, newConnection("conn-1"))
		t0 := baseTime().Add(time.Hour)
		setStatus(t, s, "conn-1", storage.StatusActive, "", t0)
		cds := claimIDs(t, s, "b1", t0)
		if len(cds) != 1 {
			t.Fatalf("claim = %+v", cds)
		}
		disabled, err := s.FinishWebhookAttempt(t.Context(), cds[0].Delivery.ID, storage.WebhookAttempt{Owner: "b1", At: t0,
			Error: "connect", NextAttemptAt: t0.Add(time.Minute), DisableIfFailingSince: t0.Add(-time.Hour)})
		must(t, "first failure", err)
		if disabled {
			t.Fatal("disabled on its first failure")
		}
		if e, _ := s.GetWebhookEndpoint(t.Context(), "ep"); !sameTime(e.FailingSince, t0) {
			t.Fatalf("failing since %v, want %v", e.FailingSince, t0)
		}
		t1 := t0.Add(2 * time.Hour)
		cds = claimIDs(t, s, "b1", t1)
		disabled, err = s.FinishWebhookAttempt(t.Context(), cds[0].Delivery.ID, storage.WebhookAttempt{Owner: "b1", At: t1,
			Error: "connect", NextAttemptAt: t1.Add(time.Minute), DisableIfFailingSince: t1.Add(-time.Hour)})
		must(t, "second failure", err)
		if !disabled {
			t.Fatal("not disabled after failing for two hours with a one hour limit")
		}
		e, _ := s.GetWebhookEndpoint(t.Context(), "ep")
		if e.Enabled || e.DisabledReason != "failing" {
			t.Fatalf("endpoint = %+v", e)
		}
		setStatus(t, s, "conn-1", storage.StatusExpired, "invalid_grant", t1.Add(time.Second))
		if got := claimIDs(t, s, "b1", t1.Add(time.Hour)); len(got) != 0 {
			t.Fatalf("claimed for a disabled endpoint: %+v", got)
		}
		if n, _, _ := s.WebhookQueueStats(t.Context()); n != 0 {
			t.Errorf("queue depth counts a disabled endpoint: %d", n)
		}
		t2 := t1.Add(24 * time.Hour)
		_, err = s.UpdateWebhookEndpoint(t.Context(), "ep", func(e storage.WebhookEndpoint) (storage.WebhookEndpoint, error) {
			e.Enabled, e.DisabledReason, e.FailingSince, e.UpdatedAt = true, "", time.Time{}, t2
			return e, nil
		})
		must(t, "re-enable", err)
		n, oldest, err := s.WebhookQueueStats(t.Context())
		must(t, "WebhookQueueStats", err)
		if n != 2 || !sameTime(oldest, t0) {
			t.Errorf("queue = %d oldest %v, want 2 and %v", n, oldest, t0)
		}
		cds = claimIDs(t, s, "b1", t2)
		if len(cds) != 1 || cds[0].Event.Seq != 1 || cds[0].Delivery.Attempts != 0 {
			t.Fatalf("replay claim = %+v, want seq 1 with attempts reset", cds)
		}
	})

	t.Run("ConcurrentClaims", func(t *testing.T) {
		s := open(t)
		createEndpoint(t, s, newEndpoint("ep", ""))
		t0 := baseTime().Add(time.Hour)
		const conns = 20
		for i := range conns {
			id := fmt.Sprintf("conn-%02d", i)
			createConnection(t, s, newConnection(id))
			setStatus(t, s, id, storage.StatusActive, "", t0)
		}
		var (
			mu   sync.Mutex
			seen = map[string]string{}
			wg   sync.WaitGroup
		)
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprintf("w%d", w)
				for range 10 {
					cds, err := s.ClaimWebhookDeliveries(t.Context(), owner, t0, t0.Add(time.Minute), 3)
					if err != nil {
						t.Errorf("claim: %v", err)
						return
					}
					mu.Lock()
					for _, cd := range cds {
						if prev, ok := seen[cd.Delivery.ID]; ok {
							t.Errorf("delivery %s claimed by %s and %s", cd.Delivery.ID, prev, owner)
						}
						seen[cd.Delivery.ID] = owner
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != conns {
			t.Errorf("%d deliveries claimed, want %d", len(seen), conns)
		}
	})
}
