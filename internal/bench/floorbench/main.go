//go:build linux

// Command floorbench measures what this machine allows a transfer of the
// 1 GiB that fetchbench's 1g-ours scenario fetches, between two processes
// over loopback TCP, with none of a BitTorrent client's protocol: a floor
// under any leecher and seeder pair's time here.
//
//	go run ./internal/bench/floorbench [-size 1024] [-runs 3]
//
// The sender (this program again, with -send) reads the content from the
// page cache in 256 KiB preads and writes each to the socket whole, as
// `node seed`'s write batches do. The receiver reads 128 KiB at a time
// into 1 MiB pieces and then, by step:
//
//   - read: nothing more;
//   - sha1: hashes each piece, on GOMAXPROCS workers;
//   - sha1+write: also writes each piece with direct I/O (O_DIRECT) into
//     16 files preallocated with fallocate, and fsyncs them at the end,
//     as `node fetch` writes what it verified;
//   - sha1+cache: writes through the page cache instead and ends with the
//     data still there, dirty, as a client whose "complete" does not wait
//     for the disk (libtorrent's mmap storage) may.
//
// Each figure is the wall time from the dial to the end, median of -runs;
// the steps alternate. Loopback only: the sender listens on 127.0.88.1.
package main

import (
	"bufio"
	"crypto/sha1"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"node/internal/bench/benchkit"
	"node/storage"
)

const (
	pieceLen = 1 << 20
	readLen  = 128 << 10 // the leecher's chunk (peer's readBufSize)
	sendLen  = 256 << 10 // the seeder's write batch (peer's writeBufSize, near enough)
	nFiles   = 16
)

func main() {
	size := flag.Int("size", 1024, "MiB to transfer")
	runs := flag.Int("runs", 3, "runs of each step")
	send := flag.String("send", "", "(internal) serve -path on this address")
	path := flag.String("path", "", "(internal) the content")
	flag.Parse()
	if *send != "" {
		// serve returns only when it fails: the parent kills it.
		fmt.Fprintln(os.Stderr, "floorbench -send:", serve(*send, *path))
		os.Exit(1)
	}
	if *size <= 0 || *size%nFiles != 0 || *runs < 1 {
		fmt.Fprintf(os.Stderr, "floorbench: -size must be a positive multiple of %d, -runs at least 1\n", nFiles)
		os.Exit(2)
	}
	if err := run(int64(*size)<<20, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "floorbench:", err)
		os.Exit(1)
	}
}

func run(size int64, runs int) error {
	dir, err := os.MkdirTemp("", "floorbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if _, err := benchkit.WriteFile(dir, "content", size, rand.NewChaCha8([32]byte{1}), make([]byte, 1<<20)); err != nil {
		return err
	}
	src := filepath.Join(dir, "content")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sender := exec.Command(self, "-send", "127.0.88.1:0", "-path", src)
	sender.Stderr = os.Stderr
	out, err := sender.StdoutPipe()
	if err != nil {
		return err
	}
	if err := sender.Start(); err != nil {
		return err
	}
	defer func() {
		_ = sender.Process.Kill()
		_ = sender.Wait()
	}()
	// The sender prints the address it listens on.
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	at := strings.TrimSpace(line)
	steps := []string{"read", "sha1", "sha1+write", "sha1+cache"}
	times := map[string][]time.Duration{}
	for r := range runs {
		for _, step := range steps {
			d, err := receive(at, size, step, filepath.Join(dir, fmt.Sprintf("out-%d", r)))
			if err != nil {
				return fmt.Errorf("%s: %w", step, err)
			}
			times[step] = append(times[step], d)
		}
	}
	fmt.Printf("%d MiB from a second process over loopback TCP, GOMAXPROCS %d, median of %d:\n", size>>20, runtime.GOMAXPROCS(0), runs)
	for _, step := range steps {
		ts := times[step]
		slices.Sort(ts)
		fmt.Printf("  %-11s %6.3f s  (%v)\n", step, ts[len(ts)/2].Seconds(), ts)
	}
	return nil
}

// serve sends the whole of path to every connection, until it fails.
func serve(addr, path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			buf := make([]byte, sendLen)
			for off := int64(0); off < fi.Size(); off += sendLen {
				n, err := src.ReadAt(buf[:min(sendLen, fi.Size()-off)], off)
				if err != nil && err != io.EOF {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

// receive fetches size bytes from addr, doing step's work on each piece.
func receive(addr string, size int64, step, outDir string) (time.Duration, error) {
	var files []*os.File
	if step == "sha1+write" || step == "sha1+cache" {
		flags := os.O_CREATE | os.O_WRONLY
		if step == "sha1+write" {
			flags |= syscall.O_DIRECT
		}
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return 0, err
		}
		defer os.RemoveAll(outDir)
		per := size / nFiles
		for i := range nFiles {
			f, err := os.OpenFile(filepath.Join(outDir, fmt.Sprint(i)), flags, 0o644)
			if err != nil {
				return 0, err
			}
			defer f.Close()
			if err := syscall.Fallocate(int(f.Fd()), 0, 0, per); err != nil {
				return 0, err
			}
			files = append(files, f)
		}
	}
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	type piece struct {
		buf []byte
		off int64
	}
	free := make(chan []byte, 8)
	for range cap(free) {
		free <- storage.Aligned(storage.NewAligned(pieceLen), 0, pieceLen)
	}
	full := make(chan piece, cap(free))
	var wg sync.WaitGroup
	var werr error
	var once sync.Once
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range full {
				if step != "read" {
					sha1.Sum(p.buf)
				}
				if files != nil {
					per := size / nFiles
					if _, err := files[p.off/per].WriteAt(p.buf, p.off%per); err != nil {
						once.Do(func() { werr = err })
					}
				}
				free <- p.buf
			}
		}()
	}
	err = fill(c, size, free, func(buf []byte, off int64) { full <- piece{buf, off} })
	close(full)
	wg.Wait()
	if err != nil {
		return 0, err
	}
	if werr != nil {
		return 0, werr
	}
	if step == "sha1+write" {
		if err := syncAll(files); err != nil {
			return 0, err
		}
	}
	d := time.Since(start)
	// sha1+cache's dirty pages are written out now, untimed, so that
	// their writeback does not run into the next step's figure.
	return d, syncAll(files)
}

func syncAll(files []*os.File) error {
	for _, f := range files {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// fill reads size bytes from c into pieces taken from free, handing each
// full one to done.
func fill(c net.Conn, size int64, free chan []byte, done func([]byte, int64)) error {
	rb := make([]byte, readLen)
	var cur []byte
	var filled int
	var off int64
	for got := int64(0); got < size; {
		n, err := c.Read(rb)
		got += int64(n)
		for data := rb[:n]; len(data) > 0; {
			if cur == nil {
				cur, filled = <-free, 0
			}
			k := copy(cur[filled:], data)
			filled, data = filled+k, data[k:]
			if filled == pieceLen {
				done(cur, off)
				cur, off = nil, off+pieceLen
			}
		}
		if err != nil {
			if err == io.EOF && got == size {
				break
			}
			return fmt.Errorf("read after %d bytes: %w", got, err)
		}
	}
	return nil
}
