package migration_test

import (
	"testing"
	"testing/fstest"

	"github.com/dromos-dev/dromos/internal/database/migration"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string
		want    int
		wantErr bool
	}{
		{"padded", "0001_init.sql", 1, false},
		{"unpadded", "12_add_index.sql", 12, false},
		{"underscores in description", "0003_add_user_id.sql", 3, false},
		{"no description", "0001_.sql", 0, true},
		{"no underscore", "0001.sql", 0, true},
		{"zero", "0000_init.sql", 0, true},
		{"sign", "+1_init.sql", 0, true},
		{"letters", "v1_init.sql", 0, true},
		{"no version", "_init.sql", 0, true},
		{"wrong extension", "0001_init.txt", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := migration.ParseVersion(tc.file)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ParseVersion(%q) = %d, %v; want %d, error %v", tc.file, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name     string
		fs       fstest.MapFS
		versions []int
		wantErr  bool
	}{
		{"ordered by version, not name", fstest.MapFS{
			"m/10_j.sql": file("10"), "m/2_b.sql": file("2"), "m/1_a.sql": file("1"),
			"m/3_c.sql": file("3"), "m/4_d.sql": file("4"), "m/5_e.sql": file("5"),
			"m/6_f.sql": file("6"), "m/7_g.sql": file("7"), "m/8_h.sql": file("8"), "m/9_i.sql": file("9"),
		}, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, false},
		{"other files ignored", fstest.MapFS{"m/0001_a.sql": file("1"), "m/README.md": file("x")}, []int{1}, false},
		{"empty", fstest.MapFS{"m/README.md": file("x")}, nil, false},
		{"gap", fstest.MapFS{"m/0001_a.sql": file("1"), "m/0003_c.sql": file("3")}, nil, true},
		{"duplicate", fstest.MapFS{"m/0001_a.sql": file("1"), "m/1_b.sql": file("1")}, nil, true},
		{"not starting at 1", fstest.MapFS{"m/0002_a.sql": file("2")}, nil, true},
		{"bad name", fstest.MapFS{"m/init.sql": file("1")}, nil, true},
		{"missing dir", fstest.MapFS{}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := migration.Load(tc.fs, "m")
			if (err != nil) != tc.wantErr {
				t.Fatalf("Load: %v, want error %v", err, tc.wantErr)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.Version)
				if m.SQL != string(tc.fs["m/"+m.Name].Data) {
					t.Errorf("%s: SQL %q, want the file's contents", m.Name, m.SQL)
				}
			}
			if len(got) != len(tc.versions) {
				t.Fatalf("versions %v, want %v", got, tc.versions)
			}
			for i := range got {
				if got[i] != tc.versions[i] {
					t.Fatalf("versions %v, want %v", got, tc.versions)
				}
			}
		})
	}
}
