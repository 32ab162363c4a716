package storagetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

func runMCPClients(t *testing.T, open func(t *testing.T) storage.Storage) {
	t.Run("CreateGetReplaceDelete", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		c := storage.MCPClient{Issuer: "https://auth.example.com/tenant1", ClientID: "c-1", Credentials: []byte{1, 2, 3},
			AuthMethod: "client_secret_basic", Source: "dynamic", CreatedAt: baseTime(), UpdatedAt: baseTime()}
		if _, err := s.GetMCPClient(ctx, c.Issuer); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get before create: %v", err)
		}
		if err := s.CreateMCPClient(ctx, c); err != nil {
			t.Fatalf("Create: %v", err)
		}
		got, err := s.GetMCPClient(ctx, c.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		checkEqual(t, "mcp client", got, c)
		dup := c
		dup.ClientID = "c-2"
		if err := s.CreateMCPClient(ctx, dup); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("second Create for the issuer: %v", err)
		}
		if got, _ := s.GetMCPClient(ctx, c.Issuer); got.ClientID != "c-1" {
			t.Fatalf("a refused Create changed the client: %+v", got)
		}
		pre := storage.MCPClient{Issuer: c.Issuer, ClientID: "operator", AuthMethod: "none", Source: "preregistered",
			CreatedAt: baseTime().Add(time.Hour), UpdatedAt: baseTime().Add(time.Hour)}
		if err := s.PutMCPClient(ctx, pre); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, _ = s.GetMCPClient(ctx, c.Issuer)
		want := pre
		want.CreatedAt = c.CreatedAt
		checkEqual(t, "replaced mcp client", got, want)
		other := storage.MCPClient{Issuer: "https://a.example.com", ClientID: "x", AuthMethod: "none", Source: "dynamic",
			CreatedAt: baseTime(), UpdatedAt: baseTime()}
		if err := s.PutMCPClient(ctx, other); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListMCPClients(ctx)
		if err != nil || len(list) != 2 || list[0].Issuer != other.Issuer || list[1].Issuer != c.Issuer {
			t.Fatalf("List = %+v, %v", list, err)
		}
		if err := s.DeleteMCPClient(ctx, c.Issuer); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteMCPClient(ctx, c.Issuer); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("second Delete: %v", err)
		}
		if _, err := s.GetMCPClient(ctx, c.Issuer); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get after delete: %v", err)
		}
	})
	t.Run("ConcurrentCreateOneWins", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.CreateMCPClient(ctx, storage.MCPClient{Issuer: "https://as.example", ClientID: string(rune('a' + i)),
					AuthMethod: "none", Source: "dynamic", CreatedAt: baseTime(), UpdatedAt: baseTime()})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, storage.ErrAlreadyExists) && !errors.Is(err, storage.ErrUnavailable):
				t.Fatalf("concurrent Create: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d creates succeeded, want 1", ok)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		s := open(t)
		if err := s.CreateMCPClient(t.Context(), storage.MCPClient{Issuer: "https://x"}); err == nil {
			t.Fatal("a client without client id was stored")
		}
	})
}
