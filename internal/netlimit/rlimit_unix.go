//go:build unix

package netlimit

import "syscall"

// FileLimit is the process's current (soft) limit on open files. The Go
// runtime raises the soft limit to the hard one at start, so this is the
// most the process can have open.
func FileLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	return uint64(r.Cur), nil
}
