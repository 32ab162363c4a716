package state_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/dromos-dev/dromos/internal/state"
)

func ExampleSigner() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	k := state.Key{ID: 1, Secret: []byte("0123456789abcdef0123456789abcdef")}
	s, err := state.NewSigner(k, nil, state.Options{Now: clock})
	if err != nil {
		panic(err)
	}
	tok, _ := s.Sign(state.Payload{ConnectionID: "conn-1", ProviderID: "github", Nonce: "n1"})

	p, err := s.Verify(tok)
	fmt.Println(p.ConnectionID, p.ExpiresAt.Format(time.Kitchen), err)

	now = now.Add(10 * time.Minute)
	_, err = s.Verify(tok)
	fmt.Println(errors.Is(err, state.ErrExpired))
	// Output:
	// conn-1 12:10PM <nil>
	// true
}
