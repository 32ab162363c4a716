package image

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// The test binary re-executes itself with jailEnv set to run one command
// inside the image's filesystem: TestMain sees the variable and calls
// runJailed instead of the tests. It starts in a fresh mount namespace
// (the parent sets CLONE_NEWNS, and Go makes the namespace's mounts
// private), so the read-only bind mount below is seen by that process
// alone and vanishes with it.
const (
	jailEnv  = "DROMOS_IMAGE_TEST_ROOT"
	imageUID = 65532
	imageGID = 65532
	// imageWorkdir and imageEntrypoint are the Dockerfile's WORKDIR and
	// ENTRYPOINT.
	imageWorkdir    = "/data"
	imageEntrypoint = "/usr/local/bin/dromos"
)

// runJailed mounts root read-only onto itself, enters it, drops to the
// image's user and execs the entrypoint with args and the environment it
// was given less jailEnv. It only returns on failure.
func runJailed(root string, args []string) error {
	runtime.LockOSThread()
	if err := syscall.Mount(root, root, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("bind mount: %w", err)
	}
	if err := syscall.Mount("", root, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("remount read-only: %w", err)
	}
	if err := syscall.Chroot(root); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := syscall.Chdir(imageWorkdir); err != nil {
		return fmt.Errorf("chdir %s: %w", imageWorkdir, err)
	}
	// no_new_privs, as compose's security_opt and the chart's
	// allowPrivilegeEscalation: false set it.
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, 38 /* PR_SET_NO_NEW_PRIVS */, 1, 0); e != 0 {
		return fmt.Errorf("no_new_privs: %w", e)
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(imageGID); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(imageUID); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if len(kv) < len(jailEnv)+1 || kv[:len(jailEnv)+1] != jailEnv+"=" {
			env = append(env, kv)
		}
	}
	argv := append([]string{filepath.Base(imageEntrypoint)}, args...)
	return syscall.Exec(imageEntrypoint, argv, env)
}
