// Command spawn is the benchmarks' launcher (fetchbench's and soakbench's,
// through benchkit.BuildLauncher): it runs one program, passes it
// its stdout and stderr, kills it (by its PID) after -limit, and then
// prints the program's rusage as a JSON line.
//
// Why a launcher: Go starts a child with clone(CLONE_VM|CLONE_VFORK) and
// exec, and Linux carries the high-water RSS of the address space a
// process had before exec into its ru_maxrss. A leecher started directly
// by fetchbench would report at least fetchbench's own peak RSS (its DHT
// nodes and seeder: tens of MiB, as much as a leecher). Started by this
// small program instead, its ru_maxrss has only this program's few MiB as
// a floor. Keep it small: no imports beyond the standard library's basics.
//
// Usage: spawn [-limit 180s] -- program args...
//
// Output: {"event":"started"} just before the program starts, then the
// program's own output, then {"event":"rusage",...} once it has exited.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	limit := flag.Duration("limit", 180*time.Second, "kill the program after this long")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: spawn [-limit D] -- program args...")
		os.Exit(2)
	}
	// Pdeathsig is sent when the thread that started the child exits:
	// stay on one thread, so that the program dies with us.
	runtime.LockOSThread()
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	os.Stdout.WriteString(`{"event":"started"}` + "\n")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "spawn:", err)
		os.Exit(1)
	}
	var killed atomic.Bool
	timer := time.AfterFunc(*limit, func() {
		killed.Store(true)
		_ = cmd.Process.Kill() // this PID only
	})
	_ = cmd.Wait()
	timer.Stop()
	ps := cmd.ProcessState
	line := `{"event":"rusage","exit":` + strconv.Itoa(ps.ExitCode()) +
		`,"killed":` + strconv.FormatBool(killed.Load())
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		line += `,"signal":` + strconv.Quote(ws.Signal().String())
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		line += `,"utime_ns":` + strconv.FormatInt(ru.Utime.Nano(), 10) +
			`,"stime_ns":` + strconv.FormatInt(ru.Stime.Nano(), 10) +
			`,"maxrss_kib":` + strconv.FormatInt(ru.Maxrss, 10)
	}
	os.Stdout.WriteString(line + "}\n")
}
