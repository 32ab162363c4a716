package rotate_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dromos-dev/dromos/internal/database"
	"github.com/dromos-dev/dromos/internal/devicepoll"
	"github.com/dromos-dev/dromos/internal/rotate"
	"github.com/dromos-dev/dromos/internal/storage"
)

// A pending device connection's sealed device code (RFC 8628) moves to
// the primary key with everything else: Usage counts it, Keys re-seals it
// with its connection binding and keeps the polling schedule, and a ring
// without the old key then opens it. Without this, removing the old key
// after a pass that reported 0 would fail the pending device flows.
func TestKeysResealsDeviceCodes(t *testing.T) {
	ctx := context.Background()
	store, err := database.Open(ctx, "sqlite:"+t.TempDir()+"/r.db", database.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	k1, k2 := key(t, 1), key(t, 2)
	provID, id := uuid.NewString(), uuid.NewString()
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := store.CreateProvider(ctx, storage.Provider{ID: provID, Name: "p", Config: []byte(`{}`), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	sealed, err := ring(t, k1).Seal([]byte("the-device-code"), devicepoll.CodeAAD(id))
	if err != nil {
		t.Fatal(err)
	}
	grant := storage.DeviceGrant{ConnectionID: id, ProviderID: provID, DeviceCode: sealed, IntervalSeconds: 7,
		NextPollAt: now.Add(7 * time.Second), ExpiresAt: now.Add(10 * time.Minute), Polls: 2, LastPolledAt: now,
		CreatedAt: now, UpdatedAt: now}
	if err := store.CreateDeviceConnection(ctx, storage.Connection{ID: id, WorkspaceID: "w", UserID: "u", ProviderID: provID,
		ProviderName: "p", ReturnURL: "https://app.example.com", Status: storage.StatusPending, CreatedAt: now, UpdatedAt: now,
		ExpiresAt: now.Add(11 * time.Minute)}, grant, 0); err != nil {
		t.Fatal(err)
	}
	rotating := ring(t, k2, k1)
	if n, err := rotate.Usage(ctx, store, rotating); err != nil || n != 1 {
		t.Fatalf("before: %d on old keys (%v), want 1 (the device code)", n, err)
	}
	st, err := rotate.Keys(ctx, store, rotating, 10, nil)
	if err != nil || st.Resealed != 1 || st.OnOldKeys != 0 || len(st.Unopened) != 0 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	g, err := store.GetDeviceGrant(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := ring(t, k2).Open(g.DeviceCode, devicepoll.CodeAAD(id)); err != nil || string(plain) != "the-device-code" {
		t.Fatalf("device code after rotation: %q, %v", plain, err)
	}
	if g.IntervalSeconds != 7 || g.Polls != 2 || !g.NextPollAt.Equal(grant.NextPollAt) || !g.ExpiresAt.Equal(grant.ExpiresAt) {
		t.Fatalf("rotation changed the schedule: %+v", g)
	}
	if again, err := rotate.Keys(ctx, store, rotating, 10, nil); err != nil || again.Resealed != 0 {
		t.Fatalf("second pass: %+v, %v", again, err)
	}
}
