# node: a trackerless BitTorrent peer. Every target stays on loopback.

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 10s
# make test fuzzes by count, not time: with a duration, Go 1.26's fuzzing
# coordinator can report "context deadline exceeded" when the time runs
# out under CPU contention, with no failing input (golang/go#75804, fixed
# in Go 1.27); a count has no deadline to race.
TESTFUZZTIME ?= 10000x
FUZZPKGS    := ./krpc ./magnet ./metadata ./peer/wire ./peer/tracker ./cmd/node/portmap ./peer/utp ./peer ./dht \
               ./cmd/node ./cmd/node/api ./cmd/node/daemon
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin

.PHONY: all build test lint demo bench soak sim fuzz interop clean install uninstall test-browser

all: build

# The product is cmd/node alone; bin/demo is the make demo driver
# (internal/demo).
build:
	$(GO) build -o bin/node ./cmd/node
	$(GO) build -o bin/demo ./internal/demo

# The README's test command: formatting, vet, staticcheck, every test (with
# the race detector: dht, krpc and peer are concurrent), then every fuzz
# target for a few seconds on top of its committed corpus.
test: lint
	$(GO) test -race -count=1 -timeout 9m ./...
	$(GO) -C third_party/go-libutp test -race -count=1 -timeout 2m -run '^(TestSendQueue|TestAppendSegments|TestAppendMessage|TestGROReadLoopback|TestSocketReadsCoalescedNonUtp|TestRecvBatchBound|FuzzGROMessage)' .
	$(MAKE) fuzz FUZZTIME=$(TESTFUZZTIME)

# What can be checked without running anything: formatting, vet of both
# builds (the interop tests compile only with -tags interop), go.mod and
# go.sum exactly as go mod tidy leaves them (it prints the difference and
# fails otherwise), staticcheck. CI runs it through make test.
lint:
	@fmt="$$(gofmt -l .)"; if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags interop ./...
	$(GO) mod tidy -diff
	$(GO) run $(STATICCHECK) ./...

# A DHT of 30 node processes on 127.0.77.x; a peer lookup by magnet link;
# then node seed of generated files and node fetch of their magnet link,
# checked byte for byte. Bounded in time; stops what it started.
demo: build
	./bin/demo -node ./bin/node -nodes 30 -timeout 90s

# Side-by-side figures, ours and anacrolix's, on loopback, in one table
# and in bench.json: fetches by magnet link, DHT lookups in a 1,000-node
# network, KRPC serving and decoding. Each step is bounded; the whole is
# stopped at 9.5 minutes (see internal/bench/driver; the programs and
# their shared packages live under internal/bench).
bench:
	$(GO) run ./internal/bench/driver -go $(GO) -json bench.json

# The hostile-swarm soak (issue 9): node fetch of a 64 MiB magnet link
# from 2 seeders among 20 adversarial peers and 200 DHT flooders, against
# the same fetch with none, on loopback; under 4 minutes, stops what it
# started. Also the last step of make bench.
soak:
	$(GO) run ./internal/bench/soakbench

# DHT lookups at internet scale on a simulated network, in one process
# (internal/simnet: nodes on a sphere, 100 ms median round trip, 1% loss,
# 30% of addresses silent, churn): ours at 1,000, 10,000 and 100,000
# nodes, anacrolix's at 10,000, and both at 1,000 among 10% closer
# liars; a table, sim.json and sim.svg. It stops itself at 9m15s.
sim:
	$(GO) run ./internal/bench/simbench -json sim.json -svg sim.svg

# Each fuzz target for FUZZTIME, one at a time (go test -fuzz takes one).
fuzz:
	@set -e; for pkg in $(FUZZPKGS); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done
	@echo "== third_party/go-libutp FuzzGROMessage"
	$(GO) -C third_party/go-libutp test -run '^$$' -fuzz '^FuzzGROMessage$$' -fuzztime $(FUZZTIME) .

# Opt-in interop with Debian's programs, installed first if missing:
# libtorrent-rasterbar (python3-libtorrent, run by /usr/bin/python3) on
# loopback in both directions, over IPv4 and IPv6, over uTP alone and
# with MSE/RC4 required, with PEX and the Fast
# extension; WebTorrent 2.8.5 (npm, under Debian's nodejs, installed by
# the test into cmd/node/testdata/webtorrent from its lock file) through a
# loopback DHT, over TCP and uTP; opentracker (HTTP and UDP) on loopback;
# and, as root, a home network behind a NAT router running miniupnpd
# (nftables), built from network namespaces the test creates, checks and
# removes, and Transmission 3.00 through the DHT, both ways, over TCP and
# over uTP with RC4 required, in a namespace with nothing but lo.
interop:
	@missing=""; \
	/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || missing="$$missing python3-libtorrent"; \
	command -v opentracker >/dev/null || missing="$$missing opentracker"; \
	command -v nft >/dev/null || missing="$$missing nftables"; \
	command -v miniupnpd >/dev/null || missing="$$missing miniupnpd-nftables"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	command -v transmission-daemon >/dev/null || missing="$$missing transmission-daemon"; \
	if [ -n "$$missing" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi
	$(GO) test -tags interop -race -count=1 -run Libtorrent -v ./peer/
	$(GO) test -tags interop -race -count=1 -run Opentracker -v ./peer/tracker ./cmd/node
	$(GO) test -tags interop -race -count=1 -run WebTorrent -v ./cmd/node/
	$(GO) test -tags interop -count=1 -run TestNATNamespaces -v ./cmd/node/portmap
	$(GO) test -tags interop -count=1 -timeout 20m -run TestTransmission -v ./cmd/node

# The web page in a real browser: Debian's chromium, installed first if
# missing, driven headless by chromedp against a fake daemon and against a
# real node daemon on loopback (make test runs the same tests, skipping
# them with a message when chromium is missing).
test-browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y chromium || \
		  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; }
	$(GO) test -count=1 -v -run 'InBrowser' ./cmd/node/web ./cmd/node

# go install ./cmd/node does the same into $(go env GOBIN) or ~/go/bin.
install: build
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 bin/node $(DESTDIR)$(BINDIR)/node

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/node

clean:
	rm -rf bin
