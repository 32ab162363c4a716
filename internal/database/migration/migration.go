package migration

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// ErrPending is returned (wrapped) by a backend opened without migrating when
// the database lacks migrations this binary knows. Run `dromos migrate`.
var ErrPending = errors.New("database schema has pending migrations")

// Migration is one schema step.
type Migration struct {
	Version int
	Name    string // file name, for logs and schema_migrations
	SQL     string
}

// Load returns the migrations in dir of fsys ordered by version. Files not
// ending in .sql are ignored.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("migration: read %s: %w", dir, err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		v, err := ParseVersion(e.Name())
		if err != nil {
			return nil, err
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migration: read %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration: %s: want version %d (versions start at 1 without gaps or duplicates)", m.Name, i+1)
		}
	}
	return out, nil
}

// ParseVersion extracts the version from a file name such as
// "0003_add_index.sql".
func ParseVersion(name string) (int, error) {
	digits, rest, ok := strings.Cut(name, "_")
	if !ok || digits == "" || !strings.HasSuffix(rest, ".sql") || len(rest) == len(".sql") {
		return 0, fmt.Errorf("migration: %q: want NNNN_description.sql", name)
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("migration: %q: version must be decimal digits", name)
		}
	}
	v, err := strconv.Atoi(digits)
	if err != nil || v < 1 {
		return 0, fmt.Errorf("migration: %q: version must be a positive number", name)
	}
	return v, nil
}
