//go:build cgo

package main

import (
	"context"
	"encoding/json"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	transportBenchMiB = flag.Int("transportbench.size", 256, "MiB BenchmarkTransport sends")
	transportBenchEnc = flag.String("transportbench.encryption", "", "--encryption mode of both processes in BenchmarkTransport (default: the product default)")
)

// BenchmarkTransport sends -transportbench.size MiB from a node seed to a
// node fetch, two processes on loopback, over TCP (both --no-utp) and
// over uTP (the default: the fetch dials uTP first), each piece verified
// and written as usual. The fetch is given the seeder in the magnet link
// (x.pe), with no DHT. MiB/s is over the fetch's own time to complete;
// CPU is both processes' from the fetch's start to its exit (the
// seeder's from /proc, its startup verification left out). With
// TRANSPORTBENCH_PROFILE=prefix each process writes a CPU profile to
// prefix-seed-tcp.pprof and so on. -transportbench.encryption=off
// compares the transports without RC4. Run:
//
//	go test -run '^$' -bench Transport -benchtime 1x -timeout 30m ./cmd/node [-transportbench.size=256] [-transportbench.encryption=off]
func BenchmarkTransport(b *testing.B) {
	bin := nodeBinary(b)
	size := *transportBenchMiB << 20
	src := b.TempDir()
	writeContent(b, filepath.Join(src, "data"), map[string]int{"big.bin": size})
	tor := filepath.Join(b.TempDir(), "big.torrent")
	code, out, errOut := runCmd("create", filepath.Join(src, "data"), "-o", tor, "--piece-length", "1048576")
	if code != exitOK {
		b.Fatalf("create: exit %d\n%s", code, errOut)
	}
	magnet := strings.Split(strings.TrimSpace(out), "\n")[1]
	for _, tr := range []string{"tcp", "utp"} {
		b.Run(tr, func(b *testing.B) {
			for range b.N {
				benchTransport(b, bin, src, tor, magnet, tr, size)
			}
		})
	}
}

func benchTransport(b *testing.B, bin, src, tor, magnet, tr string, size int) {
	common := []string{"--no-port-mapping", "--listen6", "none", "--bootstrap", ""}
	if tr == "tcp" {
		common = append(common, "--no-utp")
	}
	if *transportBenchEnc != "" {
		common = append(common, "--encryption", *transportBenchEnc)
	}
	port := freeTCPUDPPort(b, "127.0.128.1")
	seedAddr := "127.0.128.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	seed := exec.CommandContext(ctx, bin, append(append([]string{"seed"}, common...), "--listen", seedAddr, "--dir", src, tor)...)
	profile(seed, "seed-"+tr)
	defer startSeeding(b, seed)()

	dst := b.TempDir()
	seedCPU := procCPU(b, seed.Process.Pid)
	fetch := exec.CommandContext(ctx, bin, append(append([]string{"fetch"}, common...), "--no-seed", "--json",
		"--listen", "127.0.128.2:0", "--dir", dst, magnet+"&x.pe="+seedAddr)...)
	profile(fetch, "fetch-"+tr)
	start := time.Now()
	out, err := fetch.Output()
	if err != nil {
		b.Fatalf("fetch over %s: %v", tr, err)
	}
	wall := time.Since(start)
	seedCPU = procCPU(b, seed.Process.Pid) - seedCPU
	ru := fetch.ProcessState.SysUsage().(*syscall.Rusage)
	fetchCPU := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	var after time.Duration
	peers := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var ev struct {
			Event    string `json:"event"`
			AfterMS  int64  `json:"after_ms"`
			PeerList []struct {
				Transport string `json:"transport"`
			} `json:"peer_list"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil {
			continue
		}
		if ev.Event == "complete" {
			after = time.Duration(ev.AfterMS) * time.Millisecond
		}
		for _, p := range ev.PeerList {
			peers[p.Transport] = true
		}
	}
	if after == 0 {
		b.Fatalf("no complete event in %s", out)
	}
	if len(peers) > 0 && (len(peers) != 1 || !peers[tr]) {
		b.Fatalf("peers over %v, want %s", peers, tr)
	}
	mib := float64(size) / (1 << 20)
	cpu := seedCPU + fetchCPU
	b.ReportMetric(mib/after.Seconds(), "MiB/s")
	b.ReportMetric(cpu.Seconds()/(mib/1024), "CPU-s/GiB")
	b.Logf("%s: %.0f MiB in %v (fetch process %v), %.1f MiB/s; CPU seed %v + fetch %v = %.2f s/GiB",
		tr, mib, after, wall.Round(time.Millisecond), mib/after.Seconds(), seedCPU, fetchCPU.Round(time.Millisecond), cpu.Seconds()/(mib/1024))
}

// profile has cmd write a CPU profile (NODE_CPUPROFILE) to
// $TRANSPORTBENCH_PROFILE-name.pprof when that is set.
func profile(cmd *exec.Cmd, name string) {
	if p := os.Getenv("TRANSPORTBENCH_PROFILE"); p != "" {
		cmd.Env = append(os.Environ(), "NODE_CPUPROFILE="+p+"-"+name+".pprof")
	}
}

// freeTCPUDPPort is a port free for TCP and UDP on ip, as the kernel
// picked it for a TCP listener just closed.
func freeTCPUDPPort(b *testing.B, ip string) int {
	for range 20 {
		ln, err := net.Listen("tcp4", ip+":0")
		if err != nil {
			b.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip, strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	b.Fatal("no port free for TCP and UDP")
	return 0
}
