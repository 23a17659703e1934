// The Go peer of corelet-peers: the same workloads written with
// goroutines and channels, the way a Go programmer would.
//
//	go build -o go-peer . && GOMAXPROCS=1 ./go-peer -workload local_tell -sizes '{"local_tell":1000}'
//
// A "process" is a goroutine reading its own channel; an ask sends a
// request carrying a fresh reply channel of capacity 1. Mailboxes are
// buffered channels of mailboxCap (Go has no unbounded channel). The
// harness (benches/peers) runs one workload per process, with GOMAXPROCS=1
// for the single-thread workloads and GOMAXPROCS=2 for the cross-thread ones
// and skynet, and reads the one JSON line printed on success. Every
// workload checks its answer; a wrong one exits with status 1.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

// mailboxCap is the buffer of a goroutine's input channel: the capacity of
// corelet's default ring and of the raw glommio peer's shared channel.
const mailboxCap = 1024

// Sizes mirrors corelet_peers::Sizes.
type Sizes struct {
	LocalTell    uint64 `json:"local_tell"`
	LocalAsk     uint64 `json:"local_ask"`
	SpawnExit    uint64 `json:"spawn_exit"`
	Idle         uint64 `json:"idle"`
	CrossTell    uint64 `json:"cross_tell"`
	CrossAsk     uint64 `json:"cross_ask"`
	PingPong     uint64 `json:"ping_pong"`
	Counting     uint64 `json:"counting"`
	FjWorkers    uint64 `json:"fj_workers"`
	FjMessages   uint64 `json:"fj_messages"`
	FjCreate     uint64 `json:"fj_create"`
	RingActors   uint64 `json:"ring_actors"`
	RingHops     uint64 `json:"ring_hops"`
	BigActors    uint64 `json:"big_actors"`
	BigPings     uint64 `json:"big_pings"`
	SkynetLeaves uint64 `json:"skynet_leaves"`
}

// Result is the line printed on success.
type Result struct {
	Workload   string  `json:"workload"`
	Unit       string  `json:"unit"`
	Value      float64 `json:"value"`
	Gomaxprocs int     `json:"gomaxprocs"`
}

// fail reports a wrong answer (or a setup error) and exits with status 1.
func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go peer: "+format+"\n", args...)
	os.Exit(1)
}

// checkEq fails unless got == want.
func checkEq(what string, got, want uint64) {
	if got != want {
		fail("wrong answer in %s: got %d, expected %d", what, got, want)
	}
}

// sumBelow is 0 + 1 + ... + (n - 1).
func sumBelow(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	return n * (n - 1) / 2
}

// perUnit is nanoseconds per unit.
func perUnit(d time.Duration, units uint64) float64 {
	if units == 0 {
		units = 1
	}
	return float64(d.Nanoseconds()) / float64(units)
}

func main() {
	workload := flag.String("workload", "", "workload name (as in corelet-peers' JSON)")
	sizesJSON := flag.String("sizes", "{}", "sizes as a JSON object")
	flag.Parse()
	var s Sizes
	if err := json.Unmarshal([]byte(*sizesJSON), &s); err != nil {
		fail("bad -sizes: %v", err)
	}
	run, ok := workloads[*workload]
	if !ok {
		fail("no workload %q", *workload)
	}
	value := run(&s)
	unit := "ns"
	if *workload == "idle_memory" {
		unit = "bytes"
	}
	line, _ := json.Marshal(Result{*workload, unit, value, runtime.GOMAXPROCS(0)})
	fmt.Println(string(line))
}

// workloads maps the harness's names to the functions measuring them.
var workloads = map[string]func(*Sizes) float64{
	"local_tell":           func(s *Sizes) float64 { return tell(s.LocalTell, "local tell") },
	"local_ask":            func(s *Sizes) float64 { return asks(s.LocalAsk, "local ask") },
	"spawn_msg_exit":       func(s *Sizes) float64 { return spawnExit(s.SpawnExit) },
	"idle_memory":          func(s *Sizes) float64 { return idleMemory(s.Idle) },
	"cross_tell":           func(s *Sizes) float64 { return tell(s.CrossTell, "cross-thread tell") },
	"cross_ask":            func(s *Sizes) float64 { return asks(s.CrossAsk, "cross-thread ask") },
	"savina_pingpong":      func(s *Sizes) float64 { return pingPong(s.PingPong) },
	"savina_counting":      func(s *Sizes) float64 { return tell(s.Counting, "counting") },
	"savina_fj_throughput": func(s *Sizes) float64 { return forkJoinThroughput(s.FjWorkers, s.FjMessages) },
	"savina_fj_create":     func(s *Sizes) float64 { return forkJoinCreate(s.FjCreate) },
	"savina_threadring":    func(s *Sizes) float64 { return threadRing(s.RingActors, s.RingHops) },
	"savina_big":           func(s *Sizes) float64 { return big(s.BigActors, s.BigPings) },
	"skynet":               func(s *Sizes) float64 { return skynet(s.SkynetLeaves) },
}
