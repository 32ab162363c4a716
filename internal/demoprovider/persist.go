package demoprovider

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// ErrCorruptState is wrapped by the error New returns when Options.StateFile
// exists but does not hold state this package wrote.
var ErrCorruptState = errors.New("demoprovider: corrupt state file")

// stateFormatVersion is the "version" of the state file. A file with
// another version is refused rather than half understood.
const stateFormatVersion = 1

// maxStateFileBytes bounds what New reads: the file is ours, but a runaway
// file must not take the process down at start.
const maxStateFileBytes = 64 << 20

// maxSavedRotations bounds how many rotated (already used) refresh tokens of
// one family the file remembers. A connection refreshed every few minutes
// for a month would otherwise make every save rewrite thousands of digests;
// reuse of a token older than this after a restart is refused as unknown
// instead of revoking the family.
const maxSavedRotations = 64

// stateFile is the on-disk home of the refresh state. Writes are
// serialised, and a snapshot older than the one on disk is never written
// over it.
type stateFile struct {
	path string

	mu      sync.Mutex
	written uint64 // seq of the newest snapshot written
}

// snapshot is the encoded refresh state at one point, numbered in the
// order the changes happened (under Provider.mu).
type snapshot struct {
	seq  uint64
	data []byte
	err  error
}

// savedState is the state file's JSON. Refresh tokens appear only as the
// hex SHA-256 of the token: the file alone cannot be used to refresh.
type savedState struct {
	Version int `json:"version"`
	// ClientID binds the refresh tokens to the client they were issued to
	// (RFC 6749 6); a file written for another client is not loaded.
	ClientID string                 `json:"client_id"`
	Families map[string]savedFamily `json:"families"`
	// RefreshTokens is keyed by the hex SHA-256 of the token.
	RefreshTokens map[string]savedRefresh `json:"refresh_token_sha256"`
	// RevokedAccessTokens maps the jti of each revoked, unexpired access
	// token to its expiry, so a revocation survives a restart like the
	// self-contained access token does.
	RevokedAccessTokens map[string]time.Time `json:"revoked_access_tokens,omitempty"`
}

type savedFamily struct {
	Username     string               `json:"username"`
	Scopes       []string             `json:"scopes"`
	AuthTime     time.Time            `json:"auth_time"`
	Revoked      bool                 `json:"revoked,omitempty"`
	ExpiresAt    time.Time            `json:"expires_at"`
	AccessTokens map[string]time.Time `json:"access_tokens,omitempty"`
}

type savedRefresh struct {
	Family    string    `json:"family"`
	ExpiresAt time.Time `json:"expires_at"`
	Rotated   bool      `json:"rotated,omitempty"`
}

// snapshotLocked encodes the refresh state for saving; p.mu must be held.
// Without a StateFile it returns the zero snapshot, which persist ignores.
func (p *Provider) snapshotLocked(now time.Time) snapshot {
	if p.store == nil {
		return snapshot{}
	}
	p.stateSeq++
	data, err := json.Marshal(p.st.export(p.clientID, now))
	return snapshot{seq: p.stateSeq, data: data, err: err}
}

// persist writes a snapshot taken by snapshotLocked. It runs before the
// answer leaves, so a client never holds a refresh token the file does not
// know. A failure is logged, not returned: the state in memory is intact
// and the next change rewrites the whole file.
func (p *Provider) persist(ctx context.Context, s snapshot) {
	if p.store == nil || s.seq == 0 {
		return
	}
	err := s.err
	if err == nil {
		err = p.store.write(s.seq, s.data)
	}
	if err != nil {
		p.log.ErrorContext(ctx, "demo provider: saving refresh state failed; tokens issued now may not survive a restart",
			slog.Any("error", err))
	}
}

func (f *stateFile) write(seq uint64, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq <= f.written {
		return nil // a newer snapshot is already on disk
	}
	if err := writeFileAtomic(f.path, data); err != nil {
		return err
	}
	f.written = seq
	return nil
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new file, never a torn one.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("demoprovider: save state: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("demoprovider: save state: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("demoprovider: save state: %w", err)
	}
	// Make the rename itself durable. Not every platform can sync a
	// directory; the file is complete either way.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// export copies what refresh and reuse detection need, leaving out what has
// expired at now and the oldest rotated tokens beyond maxSavedRotations.
func (s *grantState) export(clientID string, now time.Time) savedState {
	out := savedState{
		Version:             stateFormatVersion,
		ClientID:            clientID,
		Families:            make(map[string]savedFamily, len(s.families)),
		RefreshTokens:       make(map[string]savedRefresh, len(s.refresh)),
		RevokedAccessTokens: make(map[string]time.Time),
	}
	for id, f := range s.families {
		if !now.Before(f.expiresAt) {
			continue
		}
		sf := savedFamily{
			Username:  f.username,
			Scopes:    f.scopes,
			AuthTime:  f.authTime,
			Revoked:   f.revoked,
			ExpiresAt: f.expiresAt,
		}
		for jti, exp := range f.accessTokens {
			if now.Before(exp) {
				if sf.AccessTokens == nil {
					sf.AccessTokens = make(map[string]time.Time)
				}
				sf.AccessTokens[jti] = exp
			}
		}
		out.Families[id] = sf
	}

	type rotatedToken struct {
		key secretKey
		exp time.Time
	}
	rotated := make(map[string][]rotatedToken)
	for k, e := range s.refresh {
		if _, ok := out.Families[e.familyID]; !ok || !now.Before(e.expiresAt) {
			continue
		}
		if e.rotated {
			rotated[e.familyID] = append(rotated[e.familyID], rotatedToken{k, e.expiresAt})
			continue
		}
		out.RefreshTokens[hex.EncodeToString(k[:])] = savedRefresh{Family: e.familyID, ExpiresAt: e.expiresAt}
	}
	for fam, list := range rotated {
		// Each rotation expires later than the one before, so the newest
		// tokens sort first.
		slices.SortFunc(list, func(a, b rotatedToken) int { return b.exp.Compare(a.exp) })
		for _, r := range list[:min(len(list), maxSavedRotations)] {
			out.RefreshTokens[hex.EncodeToString(r.key[:])] = savedRefresh{Family: fam, ExpiresAt: r.exp, Rotated: true}
		}
	}

	for jti, exp := range s.revokedJTIs {
		if now.Before(exp) {
			out.RevokedAccessTokens[jti] = exp
		}
	}
	return out
}

// loadState reads the state file at path. A missing file is an empty state;
// one written for another client is ignored (foreign is true). Errors name
// the file but never quote it.
func loadState(path, clientID string, now time.Time) (st grantState, foreign bool, err error) {
	st = newGrantState()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("demoprovider: read state file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateFileBytes+1))
	if err != nil {
		return st, false, fmt.Errorf("demoprovider: read state file: %w", err)
	}
	corrupt := func(reason string) error {
		return fmt.Errorf("%w %s: %s; remove it to start with no demo refresh tokens", ErrCorruptState, path, reason)
	}
	if len(data) > maxStateFileBytes {
		return st, false, corrupt("larger than any state this provider writes")
	}
	var saved savedState
	// The decoder's message may quote the file, so only the fact is
	// reported.
	if err := json.Unmarshal(data, &saved); err != nil {
		return st, false, corrupt("not valid JSON of the expected shape")
	}
	if saved.Version != stateFormatVersion {
		return st, false, corrupt("unsupported format version")
	}
	if saved.ClientID != clientID {
		return st, true, nil
	}
	if err := st.load(saved, now); err != "" {
		return newGrantState(), false, corrupt(err)
	}
	return st, false, nil
}

// load fills an empty state from a decoded file, dropping what has expired
// at now. It returns why the file is unusable, or "".
func (s *grantState) load(saved savedState, now time.Time) string {
	for id, sf := range saved.Families {
		if id == "" {
			return "a family has no id"
		}
		if u, ok := normalizeUsername(sf.Username); !ok || u != sf.Username {
			return "a family has an invalid username"
		}
		if len(sf.Scopes) == 0 {
			return "a family has no scopes"
		}
		for _, sc := range sf.Scopes {
			if _, ok := scopeDescription(sc); !ok {
				return "a family has an unsupported scope"
			}
		}
		if sf.ExpiresAt.IsZero() || sf.AuthTime.IsZero() {
			return "a family lacks a time"
		}
		if !now.Before(sf.ExpiresAt) {
			continue
		}
		f := &refreshFamily{
			username:     sf.Username,
			scopes:       slices.Clone(sf.Scopes),
			authTime:     sf.AuthTime,
			revoked:      sf.Revoked,
			expiresAt:    sf.ExpiresAt,
			accessTokens: make(map[string]time.Time, len(sf.AccessTokens)),
		}
		for jti, exp := range sf.AccessTokens {
			if jti == "" {
				return "an access token id is empty"
			}
			if now.Before(exp) {
				f.accessTokens[jti] = exp
			}
		}
		s.families[id] = f
	}
	for digest, sr := range saved.RefreshTokens {
		var k secretKey
		if len(digest) != 2*len(k) {
			return "a refresh token digest is malformed"
		}
		if _, err := hex.Decode(k[:], []byte(digest)); err != nil {
			return "a refresh token digest is malformed"
		}
		if _, ok := saved.Families[sr.Family]; !ok {
			return "a refresh token belongs to no family"
		}
		if sr.ExpiresAt.IsZero() {
			return "a refresh token lacks an expiry"
		}
		// The family may have expired above; its tokens go with it.
		if _, ok := s.families[sr.Family]; !ok || !now.Before(sr.ExpiresAt) {
			continue
		}
		s.refresh[k] = &refreshEntry{familyID: sr.Family, expiresAt: sr.ExpiresAt, rotated: sr.Rotated}
	}
	for jti, exp := range saved.RevokedAccessTokens {
		if jti == "" {
			return "a revoked access token id is empty"
		}
		if now.Before(exp) {
			s.revokedJTIs[jti] = exp
		}
	}
	return ""
}
