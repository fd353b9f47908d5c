# baton — see README.md. Quick start: `make demo`, `make test`.
GO        ?= go
PKGS      := ./...
# Packages with concurrency are tested with the race detector; test/ holds the real-server suites.
TEST_TIMEOUT ?= 25m
FUZZTIME  ?= 5m

.PHONY: all build test unit integration demo bench lint fuzz deps clean chaos soak

all: build

build:
	$(GO) build -o bin/baton ./cmd/baton

deps:
	bash test/scripts/deps.sh test

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Everything: lint, unit tests and the real-cluster integration tests, all with -race.
test: deps lint build
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

unit:
	$(GO) test -race -count=1 ./router/... ./topology/... ./proxy/... ./health/...

integration: deps build
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./test/...

# Chaos tests (test/chaos): two baton processes, a 3-member etcd, kill/hang/partition under load;
# the kill -9 tests fail over BATON_CHAOS_RUNS times per engine and print the timing table.
BATON_CHAOS_RUNS ?= 10
chaos: deps
	BATON_CHAOS_RUNS=$(BATON_CHAOS_RUNS) $(GO) test -count=1 -v -timeout 60m -run Chaos ./test/chaos/

# The soak (test/chaos TestChaos{PG,My}Soak): load through two instances while every failover
# event repeats for BATON_CHAOS_SOAK per engine (one pass in `make test`); prints a table per
# engine with the false failovers, lost writes and client errors.
BATON_CHAOS_SOAK ?= 20m
soak: deps
	BATON_CHAOS_SOAK=$(BATON_CHAOS_SOAK) $(GO) test -count=1 -v -timeout 120m -run 'Chaos(PG|My)Soak' ./test/chaos/

# Local PostgreSQL and MariaDB clusters (primary + 2 replicas each) with baton in front; Ctrl-C stops everything.
demo: deps build
	bin/baton demo

bench: build
	bash test/scripts/deps.sh bench
	$(GO) run ./test/bench $(BENCHFLAGS)

# Fuzz the wire readers and the classifier (FUZZTIME each).
fuzz:
	$(GO) test ./proxy/pgwire/ -run '^$$' -fuzz FuzzClientMessages -fuzztime $(FUZZTIME)
	$(GO) test ./router/ -run '^$$' -fuzz FuzzClassifyPG -fuzztime $(FUZZTIME)
	$(GO) test ./router/ -run '^$$' -fuzz FuzzClassifyMy -fuzztime $(FUZZTIME)
	$(GO) test ./proxy/mywire/ -run '^$$' -fuzz FuzzPackets -fuzztime $(FUZZTIME)
	$(GO) test ./proxy/myproxy/ -run '^$$' -fuzz FuzzCommands -fuzztime $(FUZZTIME)
	$(GO) test ./proxy/pgwire/ -run '^$$' -fuzz '^FuzzLogin$$' -fuzztime $(FUZZTIME)
	$(GO) test ./proxy/pgwire/ -run '^$$' -fuzz '^FuzzAuthenticateKey$$' -fuzztime $(FUZZTIME)
	$(GO) test ./proxy/pgwire/ -run '^$$' -fuzz '^FuzzRolPassword$$' -fuzztime $(FUZZTIME)
	$(GO) test ./proxy/mywire/ -run '^$$' -fuzz '^FuzzNativeHash$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf bin
