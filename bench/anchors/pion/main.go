// The Pion v4 anchor for `cargo bench -p spaces-tests --bench rtc_hops`: the same shapes, with
// the stack LiveKit is built on, so that each of our figures has a ratio measured on the same
// machine in the same run (bench/anchors/run.sh). Loopback only; every link real (ICE, DTLS,
// SRTP), both ends in this process; 80-byte payloads every 20 ms carrying their send time.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

const (
	setups  = 300
	depth   = 6
	packets = 250
	payload = 80
)

var api = newAPI()

func newAPI() *webrtc.API {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	m := &webrtc.MediaEngine{}
	must(m.RegisterDefaultCodecs())
	// RTCP reports and NACK, as a LiveKit SFU runs them (ours sends reports too).
	registry := &interceptor.Registry{}
	must(webrtc.RegisterDefaultInterceptors(m, registry))
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m),
		webrtc.WithInterceptorRegistry(registry))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "pion anchor:", err)
		os.Exit(1)
	}
}

// link is one sender → receiver connection; onRTP sees every packet the receiver reads.
type link struct {
	up, down *webrtc.PeerConnection
	track    *webrtc.TrackLocalStaticRTP
}

func connect(onRTP func(*rtp.Packet)) (*link, time.Duration) {
	start := time.Now()
	up, err := api.NewPeerConnection(webrtc.Configuration{})
	must(err)
	down, err := api.NewPeerConnection(webrtc.Configuration{})
	must(err)
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
	}, "audio", "pion")
	must(err)
	sender, err := up.AddTrack(track)
	must(err)
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	down.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			if onRTP != nil {
				onRTP(p)
			}
		}
	})
	var wg sync.WaitGroup
	wg.Add(2)
	for _, pc := range []*webrtc.PeerConnection{up, down} {
		var once sync.Once
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			if s == webrtc.PeerConnectionStateConnected {
				once.Do(wg.Done)
			}
		})
	}
	// Candidates in the descriptions, as ours sends them.
	offer, err := up.CreateOffer(nil)
	must(err)
	gathered := webrtc.GatheringCompletePromise(up)
	must(up.SetLocalDescription(offer))
	<-gathered
	must(down.SetRemoteDescription(*up.LocalDescription()))
	answer, err := down.CreateAnswer(nil)
	must(err)
	gathered = webrtc.GatheringCompletePromise(down)
	must(down.SetLocalDescription(answer))
	<-gathered
	must(up.SetRemoteDescription(*down.LocalDescription()))
	wg.Wait()
	return &link{up: up, down: down, track: track}, time.Since(start)
}

func (l *link) close() {
	must(l.up.Close())
	must(l.down.Close())
}

func percentile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}

// rssKiB is this process's resident memory (VmRSS), KiB.
func rssKiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	must(err)
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			must(err)
			return v
		}
	}
	return 0
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	must(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// send writes `packets` packets, one every 20 ms, to every track, each carrying its send time.
func send(tracks []*webrtc.TrackLocalStaticRTP, epoch time.Time) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < packets; i++ {
		<-tick.C
		body := make([]byte, payload)
		binary.BigEndian.PutUint64(body, uint64(time.Since(epoch).Nanoseconds()))
		p := &rtp.Packet{
			Header: rtp.Header{
				Version: 2, PayloadType: 111, SequenceNumber: uint16(i),
				Timestamp: uint32(i * 960), SSRC: 0x5ace0001,
			},
			Payload: body,
		}
		for _, t := range tracks {
			must(t.WriteRTP(p))
		}
	}
}

func main() {
	var times []float64
	over := 0
	for i := 0; i < setups; i++ {
		l, took := connect(nil)
		ms := float64(took.Microseconds()) / 1e3
		times = append(times, ms)
		if ms > 1000 {
			over++
		}
		l.close()
	}
	sort.Float64s(times)
	fmt.Printf("link set-up (loopback, both ends connected): p50 %.1f ms, p99 %.1f ms, max %.1f ms, over 1 s: %d, n=%d\n",
		percentile(times, 0.5), percentile(times, 0.99), times[len(times)-1], over, len(times))

	// Latency per hop: a chain 0 -> 1 -> ... -> depth, each node forwarding unchanged.
	epoch := time.Now()
	var mu sync.Mutex
	latencies := make([][]float64, depth+1)
	links := make([]*link, depth)
	for d := depth; d >= 1; d-- {
		d := d
		links[d-1], _ = connect(func(p *rtp.Packet) {
			sent := time.Duration(binary.BigEndian.Uint64(p.Payload))
			mu.Lock()
			latencies[d] = append(latencies[d], float64((time.Since(epoch) - sent).Microseconds()))
			mu.Unlock()
			if d < depth {
				must(links[d].track.WriteRTP(p))
			}
		})
	}
	send([]*webrtc.TrackLocalStaticRTP{links[0].track}, epoch)
	time.Sleep(300 * time.Millisecond)
	var p50s []float64
	for d := 1; d <= depth; d++ {
		mu.Lock()
		lat := latencies[d]
		mu.Unlock()
		p50 := percentile(lat, 0.5)
		p50s = append(p50s, p50)
		fmt.Printf("depth %d: latency p50 %.0f µs, p99 %.0f µs (%d packets)\n", d, p50, percentile(lat, 0.99), len(lat))
	}
	fmt.Printf("added per forwarding hop (p50 slope, depth 1 -> %d): %.0f µs\n", depth, (p50s[depth-1]-p50s[0])/float64(depth-1))
	for _, l := range links {
		l.close()
	}

	// CPU per forwarded child stream: one parent writing to 0, 10 then 40 children.
	seconds := float64(packets) * 0.02
	var none float64
	for _, children := range []int{0, 10, 40} {
		var kids []*link
		var tracks []*webrtc.TrackLocalStaticRTP
		rssBefore := rssKiB()
		for i := 0; i < children; i++ {
			l, _ := connect(func(*rtp.Packet) {})
			kids = append(kids, l)
			tracks = append(tracks, l.track)
		}
		time.Sleep(200 * time.Millisecond)
		rssIdle := rssKiB()
		before := cpuSeconds()
		send(tracks, time.Now())
		used := cpuSeconds() - before
		if children == 40 {
			fmt.Printf("RSS per link (both ends) at 40 children: idle %.0f KiB, with traffic %.0f KiB\n",
				(rssIdle-rssBefore)/40, (rssKiB()-rssBefore)/40)
		}
		if children == 0 {
			none = used
		} else {
			fmt.Printf("CPU per forwarded child stream at %d children (send + receive ends, both in this process): %.2f %% of one core (%.2f s CPU over %.0f s, %.2f s with none)\n",
				children, (used-none)/float64(children)/seconds*100, used, seconds, none)
		}
		for _, l := range kids {
			l.close()
		}
	}
}
