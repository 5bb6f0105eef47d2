# attnscope build. GOEXPERIMENT=simd is required: without it GoMLX's pure-Go backend
# runs its matrix multiplications about 20x slower.
export GOEXPERIMENT := simd
# Go 1.27.3 (GoMLX v0.28.16 needs Go 1.27): the go command fetches this toolchain
# through the module proxy on first use when the installed Go is older.
export GOTOOLCHAIN := go1.27.3
export CGO_ENABLED := 1
GO        ?= go
BIN       := bin/attnscope
TEST_TIMEOUT ?= 25m

.PHONY: all build build-xla demo test test-short vet bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/attnscope

# With GoMLX's XLA backend (--backend xla:cuda) for machines with a PJRT plugin; cgo.
build-xla:
	$(GO) build -tags xla -o $(BIN) ./cmd/attnscope

# The main job on the bundled default: no download, no GPU.
demo: build
	./$(BIN) demo

# Every test of the project (what CI runs).
test: vet
	$(GO) test -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -tags xla -run 'XLA|Backend' ./model

test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...
	$(GO) vet -tags xla ./model

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

clean:
	rm -rf bin
