package testutil

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// tmpfsEnv marks the re-executed test binary that runs inside the namespace.
const tmpfsEnv = "CCRELAY_TEST_TMPFS"

// Tmpfs runs the calling test on a real, small file system it controls: a
// tmpfs of the given size ("1m") that the test can fill to the last byte
// or remount read-only, as a disk can turn full or read-only under a
// running relay. Root cannot fake either with file modes (it ignores them).
//
// The test binary re-executes the test under unshare(1) in a private user
// and mount namespace (no privilege needed; the mount is invisible outside
// and gone when the process ends). In that child Tmpfs returns the mount
// point. In the parent it returns "" once the child has finished (its
// output and verdict become the parent's), and the test must return:
//
//	dir := testutil.Tmpfs(t, "1m")
//	if dir == "" {
//		return
//	}
func Tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Getenv(tmpfsEnv) == t.Name() {
		dir := t.TempDir()
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
			t.Fatalf("mount tmpfs in the test's namespace: %v", err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
		return dir
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare(1) (util-linux) to mount a private tmpfs")
	}
	if out, err := exec.Command(unshare, "-rm", "true").CombinedOutput(); err != nil {
		t.Skipf("this system refuses unprivileged user namespaces (%v: %s); the file-system fault tests need them", err, strings.TrimSpace(string(out)))
	}
	args := []string{"-rm", "--propagation", "private", os.Args[0],
		"-test.run", "^" + regexp.QuoteMeta(t.Name()) + "$", "-test.count=1", "-test.v"}
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), tmpfsEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("in a private mount namespace:\n%s", out)
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		t.Fatalf("the test failed in its mount namespace (exit %d)", ee.ExitCode())
	case err != nil:
		t.Fatalf("run the test in a mount namespace: %v", err)
	case !strings.Contains(string(out), "--- PASS: "+t.Name()):
		t.Fatalf("the test did not run in its mount namespace")
	}
	return ""
}

// Remount makes the tmpfs at dir read-only or writable again. Making it
// read-only fails (EBUSY) while a file on it is open for writing, as the
// kernel refuses for any file system.
func Remount(t *testing.T, dir string, readOnly bool) {
	t.Helper()
	flags := uintptr(syscall.MS_REMOUNT)
	if readOnly {
		flags |= syscall.MS_RDONLY
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, ""); err != nil {
		t.Fatalf("remount %s (read-only %v): %v", dir, readOnly, err)
	}
}

// FillDisk writes a file in dir until the file system is full and returns
// its path; removing it frees the space again.
func FillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := dir + "/filler"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatal(err)
		}
	}
	// Fill the last partial page too.
	for {
		if _, err := f.Write(chunk[:1]); err != nil {
			break
		}
	}
	return path
}
