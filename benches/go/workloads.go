package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// counterMsg is a message to a counter goroutine: add v, or (with a reply
// channel) answer with the totals or count one and answer with the count.
type counterMsg struct {
	op    int
	v     uint64
	reply chan [2]uint64
}

const (
	opAdd = iota
	opGet
	opInc
)

// counter counts (and sums) what it is told until its channel is closed.
func counter(in <-chan counterMsg) {
	var count, sum uint64
	for m := range in {
		switch m.op {
		case opAdd:
			count++
			sum += m.v
		case opGet:
			m.reply <- [2]uint64{count, sum}
		case opInc:
			count++
			m.reply <- [2]uint64{count, count}
		}
	}
}

// ask sends a request with a fresh reply channel and waits for the answer.
func ask(to chan<- counterMsg, op int) [2]uint64 {
	reply := make(chan [2]uint64, 1)
	to <- counterMsg{op: op, reply: reply}
	return <-reply
}

// tell: a producer goroutine sends the numbers below n to a counter
// goroutine, then asks it for its totals (local tell, Savina Counting and,
// with GOMAXPROCS=2, cross-thread tell).
func tell(n uint64, what string) float64 {
	to := make(chan counterMsg, mailboxCap)
	go counter(to)
	totals := make(chan [2]uint64, 1)
	started := time.Now()
	go func() {
		for i := uint64(0); i < n; i++ {
			to <- counterMsg{op: opAdd, v: i}
		}
		totals <- ask(to, opGet)
	}()
	t := <-totals
	elapsed := time.Since(started)
	close(to)
	checkEq(what+" count", t[0], n)
	checkEq(what+" sum", t[1], sumBelow(n))
	return perUnit(elapsed, n)
}

// asks: an asker goroutine asks a counter goroutine n times, one at a time.
func asks(n uint64, what string) float64 {
	to := make(chan counterMsg, mailboxCap)
	go counter(to)
	last := make(chan uint64, 1)
	started := time.Now()
	go func() {
		var got uint64
		for i := uint64(0); i < n; i++ {
			got = ask(to, opInc)[0]
		}
		last <- got
	}()
	got := <-last
	elapsed := time.Since(started)
	close(to)
	checkEq(what+" count", got, n)
	return perUnit(elapsed, n)
}

// spawnExit: n times, one at a time, start a goroutine, send it one
// message, wait for it to finish.
func spawnExit(n uint64) float64 {
	var total uint64
	started := time.Now()
	for i := uint64(0); i < n; i++ {
		in := make(chan uint64, 1)
		done := make(chan struct{})
		go func() {
			total += <-in
			close(done)
		}()
		in <- i
		<-done
	}
	elapsed := time.Since(started)
	checkEq("spawn+exit sum", total, sumBelow(n))
	return perUnit(elapsed, n)
}

// residentBytes is VmRSS of this process.
func residentBytes() uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fail("reading /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			kib, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				fail("bad VmRSS line %q", line)
			}
			return kib * 1024
		}
	}
	fail("no VmRSS in /proc/self/status")
	return 0
}

// idleMemory: resident memory per idle goroutine, each blocked on its own
// channel.
func idleMemory(n uint64) float64 {
	var started sync.WaitGroup
	spawn := func() chan struct{} {
		in := make(chan struct{})
		started.Add(1)
		go func() {
			started.Done()
			for range in {
			}
		}()
		return in
	}
	first := spawn()
	started.Wait()
	time.Sleep(10 * time.Millisecond)
	before := residentBytes()
	idle := make([]chan struct{}, 0, n)
	for i := uint64(0); i < n; i++ {
		idle = append(idle, spawn())
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond)
	after := residentBytes()
	for _, in := range append(idle, first) {
		close(in)
	}
	return (float64(after) - float64(before)) / float64(n)
}

// pingPong: two goroutines bounce a ball `rounds` times.
func pingPong(rounds uint64) float64 {
	ping := make(chan struct{}, 1)
	pong := make(chan struct{}, 1)
	pings := make(chan uint64, 1)
	go func() {
		var n uint64
		for range ping {
			n++
			pong <- struct{}{}
		}
		pings <- n
	}()
	started := time.Now()
	var hits uint64
	for hits < rounds {
		ping <- struct{}{}
		<-pong
		hits++
	}
	elapsed := time.Since(started)
	close(ping)
	checkEq("pingpong pongs", hits, rounds)
	checkEq("pingpong pings", <-pings, rounds)
	return perUnit(elapsed, 2*rounds)
}

// forkJoinThroughput: `workers` counter goroutines get `perWorker`
// messages each, round-robin, then are asked for their totals.
func forkJoinThroughput(workers, perWorker uint64) float64 {
	pool := make([]chan counterMsg, workers)
	for i := range pool {
		pool[i] = make(chan counterMsg, mailboxCap)
		go counter(pool[i])
	}
	total := workers * perWorker
	started := time.Now()
	for i := uint64(0); i < total; i++ {
		pool[i%workers] <- counterMsg{op: opAdd, v: i}
	}
	var sum uint64
	for _, w := range pool {
		t := ask(w, opGet)
		checkEq("fork-join per-worker count", t[0], perWorker)
		sum += t[1]
	}
	elapsed := time.Since(started)
	for _, w := range pool {
		close(w)
	}
	checkEq("fork-join sum", sum, sumBelow(total))
	return perUnit(elapsed, total)
}

// forkJoinCreate: n goroutines, each handles one message and exits.
func forkJoinCreate(n uint64) float64 {
	var total uint64
	var done sync.WaitGroup
	started := time.Now()
	for i := uint64(0); i < n; i++ {
		in := make(chan uint64, 1)
		done.Add(1)
		go func() {
			atomic.AddUint64(&total, <-in)
			done.Done()
		}()
		in <- i
	}
	done.Wait()
	elapsed := time.Since(started)
	checkEq("fork-join create sum", atomic.LoadUint64(&total), sumBelow(n))
	return perUnit(elapsed, n)
}

// token is ThreadRing's token: hops still to make and hops made.
type token struct{ left, hops uint64 }

// threadRing: a token makes `hops` hops around a ring of `actors`
// goroutines.
func threadRing(actors, hops uint64) float64 {
	ring := make([]chan token, actors)
	for i := range ring {
		ring[i] = make(chan token, 1)
	}
	type end struct{ last, hops uint64 }
	done := make(chan end, 1)
	for i := range ring {
		go func(index int) {
			in, next := ring[index], ring[(index+1)%len(ring)]
			for t := range in {
				if t.left == 0 {
					done <- end{uint64(index), t.hops}
					continue
				}
				next <- token{t.left - 1, t.hops + 1}
			}
		}(i)
	}
	started := time.Now()
	ring[0] <- token{hops, 0}
	e := <-done
	elapsed := time.Since(started)
	for _, in := range ring {
		close(in)
	}
	checkEq("threadring hops", e.hops, hops)
	checkEq("threadring last holder", e.last, hops%actors)
	return perUnit(elapsed, hops)
}

// bigMsg is a Savina Big message: a ping from goroutine `from`, or a pong.
type bigMsg struct {
	ping bool
	from int
}

// big: goroutines ping random neighbours, which answer; each reports to a
// sink once all its own pings are answered.
func big(actors, pings uint64) float64 {
	peers := make([]chan bigMsg, actors)
	for i := range peers {
		peers[i] = make(chan bigMsg, mailboxCap)
	}
	sink := make(chan uint64, actors)
	start := make(chan struct{})
	var quit sync.WaitGroup
	for i := range peers {
		quit.Add(1)
		go func(index int) {
			defer quit.Done()
			rng := newXorShift(uint64(index))
			left, pongs := pings, uint64(0)
			ping := func() {
				left--
				peers[rng.neighbour(index, len(peers))] <- bigMsg{ping: true, from: index}
			}
			<-start
			ping()
			for m := range peers[index] {
				if m.ping {
					peers[m.from] <- bigMsg{}
					continue
				}
				pongs++
				if left > 0 {
					ping()
				} else if pongs == pings {
					sink <- pongs
				}
			}
		}(i)
	}
	started := time.Now()
	close(start)
	var total uint64
	for i := uint64(0); i < actors; i++ {
		total += <-sink
	}
	elapsed := time.Since(started)
	for _, p := range peers {
		close(p)
	}
	quit.Wait()
	checkEq("big pongs", total, actors*pings)
	return perUnit(elapsed, 2*actors*pings)
}

// skynetNode: a leaf sends its number; an inner node starts ten children,
// adds up their ten sums and sends the total to its parent.
func skynetNode(parent chan<- uint64, num, size uint64) {
	if size == 1 {
		parent <- num
		return
	}
	children := make(chan uint64, 10)
	child := size / 10
	for i := uint64(0); i < 10; i++ {
		go skynetNode(children, num+i*child, child)
	}
	var sum uint64
	for i := 0; i < 10; i++ {
		sum += <-children
	}
	parent <- sum
}

// skynet: the whole run of a tree with `leaves` leaves, in ns.
func skynet(leaves uint64) float64 {
	result := make(chan uint64, 1)
	started := time.Now()
	go skynetNode(result, 0, leaves)
	sum := <-result
	elapsed := time.Since(started)
	checkEq("skynet sum", sum, sumBelow(leaves))
	runtime.KeepAlive(result)
	return perUnit(elapsed, 1)
}

// xorShift is corelet_peers::check::XorShift, so every runtime draws the
// same neighbours.
type xorShift struct{ state uint64 }

func newXorShift(seed uint64) *xorShift {
	return &xorShift{seed*0x9E3779B97F4A7C15 | 1}
}

func (r *xorShift) below(bound uint64) uint64 {
	x := r.state
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	r.state = x
	return x % bound
}

func (r *xorShift) neighbour(me, n int) int {
	other := int(r.below(uint64(n - 1)))
	if other >= me {
		return other + 1
	}
	return other
}
