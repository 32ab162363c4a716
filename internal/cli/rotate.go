package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/internal/database"
	"github.com/dromos-dev/dromos/internal/logging"
)

func runRotateKeys(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	fs := newFlags("rotate-keys", "Re-seals every stored secret (tokens, PKCE verifiers, client secrets) under the primary key of\n"+
		"ENCRYPTION_KEYS, online and in batches, while brokers keep serving. Interrupted runs resume where\n"+
		"they stopped (rows already on the primary key are skipped). Deploy the new ENCRYPTION_KEYS to every\n"+
		"broker first, keeping the old key listed after the new one, then run this; afterwards the old key\n"+
		"can be removed.", config.BrokerVars, ios)
	batch := fs.Int("batch", 200, "connections per batch")
	check := fs.Bool("check", false, "only count ciphertexts not on the primary key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Without DATABASE_URL the broker's default, a SQLite file in the
	// working directory, would be created empty and report "0 on old
	// keys": the very answer after which operators remove the old key.
	if err := existingDatabase(env); err != nil {
		return err
	}
	cfg, err := config.LoadBroker(env)
	if err != nil {
		return err
	}
	log := logging.New(ios.err, cfg.LogLevel)
	svc, store, err := buildBroker(ctx, cfg, log, newRegistry(), nil)
	if err != nil {
		return err
	}
	defer store.Close()
	defer svc.Close()
	if *check {
		n, err := svc.KeyUsage(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(ios.out, "ciphertexts on old keys: %d\n", n)
		return nil
	}
	st, err := svc.RotateKeys(ctx, *batch, func(s broker.RotateStats) {
		fmt.Fprintf(ios.err, "… %d connections checked, %d re-sealed\n", s.Connections, s.Resealed)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(ios.out, "providers checked: %d\nwebhook endpoints checked: %d\nconnections checked: %d\nciphertexts re-sealed: %d\ntokens moved to the owner binding: %d\nciphertexts still on old keys: %d\n",
		st.Providers, st.Webhooks, st.Connections, st.Resealed, st.Rebound, st.OnOldKeys)
	if len(st.Unopened) > 0 {
		fmt.Fprintf(ios.out, "rows that could not be opened: %d\n", len(st.Unopened))
		for _, row := range st.Unopened {
			fmt.Fprintf(ios.out, "  %s\n", printable(row))
		}
		return fmt.Errorf("%d rows hold a ciphertext no key in ENCRYPTION_KEYS opens (listed above); "+
			"keep the old key until they are re-sealed or deleted", len(st.Unopened))
	}
	if st.OnOldKeys > 0 {
		return fmt.Errorf("%d ciphertexts are still on old keys (written during the run?); run again", st.OnOldKeys)
	}
	return nil
}

// existingDatabase refuses a missing DATABASE_URL and a SQLite file that
// does not exist: rotation is about rows already stored.
func existingDatabase(env config.Env) error {
	raw := strings.TrimSpace(env["DATABASE_URL"])
	if raw == "" {
		return errors.New("DATABASE_URL is required: set it to the database the brokers use " +
			"(without it a new, empty SQLite file would be checked and report nothing on old keys)")
	}
	t, err := database.Parse(raw)
	if err != nil {
		return err
	}
	if t.Backend == database.SQLite {
		if _, err := os.Stat(t.DSN); err != nil {
			return fmt.Errorf("DATABASE_URL names a SQLite file that does not exist (%s): rotate-keys works on an existing database", printable(t.DSN))
		}
	}
	return nil
}
