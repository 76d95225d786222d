package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/zap"
)

// SQSAPI holds the SQS calls the consumer makes.
type SQSAPI interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

// ClientOptions configures the HTTP client of the SQS client that serves a
// consumer with the given number of pollers (sqs.NewFromConfig(cfg,
// ingest.ClientOptions(pollers))).
//
// The SDK's own client loses a response now and then: smithy-go closes a
// request's body as soon as the response headers arrive, while net/http's
// write loop may still be checking that body for bytes past its
// Content-Length; the SDK's body wrapper then answers io.EOF as an error
// (from WriteTo), the transport closes the connection under the response
// being read, the SDK logs "failed to discard remaining HTTP response body
// … use of closed network connection" and retries the call. For a
// ReceiveMessage, the messages of the lost response stay invisible until
// their visibility timeout ends (the 120 s tail of `make demo`). Handing
// the transport a copy of the body that only it owns closes that race.
//
// Idle connections are also kept for every call the consumer makes at
// once (pollers, deletes, extensions), not the SDK's 10, so that a burst
// does not close and redial connections; and they are dropped after
// IdleConnTimeout, below the keep-alive timeout of common servers (Node.js
// and fauxqs's Fastify 72 s, AWS load balancers 60 s), so that the client
// does not send a request on a connection the server is closing.
func ClientOptions(pollers int) func(*sqs.Options) {
	return func(o *sqs.Options) {
		o.HTTPClient = NewHTTPClient(pollers + deleteWorkers(pollers) + extendConcurrency + releaseConcurrency)
	}
}

// IdleConnTimeout is how long an idle connection to SQS is kept.
const IdleConnTimeout = 50 * time.Second

// NewHTTPClient returns the SDK's default HTTP client, keeping up to
// maxIdle idle connections, dropping them after IdleConnTimeout, and
// sending every request from a copy of its body (see ClientOptions).
func NewHTTPClient(maxIdle int) *http.Client {
	tr := awshttp.NewBuildableClient().GetTransport()
	tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, maxIdle)
	tr.MaxIdleConns = max(tr.MaxIdleConns, maxIdle)
	tr.IdleConnTimeout = IdleConnTimeout
	return &http.Client{Transport: ownedBody{tr}}
}

// ownedBody sends each request with a copy of its body (SQS requests are
// at most a few hundred KiB, already in memory), so that the caller
// closing its body once the response has come cannot make the transport
// drop the connection under the response.
type ownedBody struct{ next http.RoundTripper }

func (t ownedBody) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return t.next.RoundTrip(req)
	}
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	r.ContentLength = int64(len(b))
	return t.next.RoundTrip(r)
}

// QueueVisibility reads the queue's visibility timeout.
func QueueVisibility(ctx context.Context, api SQSAPI, queueURL string) (time.Duration, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout},
	})
	if err != nil {
		return 0, fmt.Errorf("read visibility timeout of %s: %w", queueURL, err)
	}
	s, err := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)])
	if err != nil || s <= 0 {
		return 0, fmt.Errorf("queue %s reports visibility timeout %q", queueURL, out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)])
	}
	return time.Duration(s) * time.Second, nil
}

// Backlog is a queue's depth, as SQS approximates it.
type Backlog struct {
	Visible  int64 `json:"visible"`   // waiting to be received
	InFlight int64 `json:"in_flight"` // received by some consumer, not yet deleted
	Delayed  int64 `json:"delayed"`
}

// QueueBacklog reads the queue's approximate depth.
func QueueBacklog(ctx context.Context, api SQSAPI, queueURL string) (Backlog, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible, types.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil {
		return Backlog{}, fmt.Errorf("read depth of %s: %w", queueURL, err)
	}
	n := func(a types.QueueAttributeName) int64 {
		v, _ := strconv.ParseInt(out.Attributes[string(a)], 10, 64)
		return v
	}
	return Backlog{
		Visible:  n(types.QueueAttributeNameApproximateNumberOfMessages),
		InFlight: n(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible),
		Delayed:  n(types.QueueAttributeNameApproximateNumberOfMessagesDelayed),
	}, nil
}

// held is a message the consumer holds: received, not yet deleted.
type held struct {
	receipt  string
	id       string
	received time.Time
	deadline time.Time // when its visibility ends unless extended
	acked    bool      // queued for delete; still extended until deleted
	nacked   bool      // its rows were refused at shutdown: kept only to be released
	lost     bool      // SQS refused its receipt handle: it can no longer be extended
}

// tracker keeps the messages the consumer holds: it caps how many there
// are, extends their visibility and deletes them in batches of ten. (The
// word "ledger" belongs to the warehouse's wharf_loads.)
type tracker struct {
	api        SQSAPI
	queueURL   string
	visibility time.Duration
	log        *zap.Logger
	m          *metrics
	clock      clock

	slots     chan struct{} // one token per message that may be held
	acquiring chan struct{} // held by the one caller of acquire taking slots

	mu   sync.Mutex
	msgs map[string]*held // by receipt handle

	deletes  chan string
	deleters int // delete calls in flight at once

	// Every delete call runs under delCtx and every extension under extCtx;
	// the drain cancels them when its budget ends, so that no call (and no
	// retry backoff) outlives drain_timeout.
	delCtx    context.Context
	cancelDel context.CancelFunc
	extCtx    context.Context
	cancelExt context.CancelFunc

	// stopping is set once polling stops: from then on a message whose rows
	// are refused is kept, to be released by the drain, not forgotten.
	stopping atomic.Bool
}

func newTracker(api SQSAPI, queueURL string, visibility time.Duration, maxInFlight int, log *zap.Logger, m *metrics, clk clock) *tracker {
	tk := &tracker{
		api: api, queueURL: queueURL, visibility: visibility, log: log, m: m, clock: clk,
		slots:     make(chan struct{}, maxInFlight),
		acquiring: make(chan struct{}, 1),
		msgs:      map[string]*held{},
		deletes:   make(chan string, maxInFlight),
		deleters:  8,
	}
	tk.delCtx, tk.cancelDel = context.WithCancel(context.Background())
	tk.extCtx, tk.cancelExt = context.WithCancel(context.Background())
	return tk
}

// deleteWorkers sizes the pool of concurrent delete calls from the number
// of pollers: each poller can receive ten messages per round trip, so as
// many delete calls in flight (ten messages each) keep pace with them at
// any latency, and twice as many leave room for retries and for the
// bursts a large flush acks at once.
func deleteWorkers(pollers int) int {
	return min(max(2*pollers, 4), 64)
}

// callTimeout bounds one SQS call of the tracker (it is also bounded by the
// drain).
const callTimeout = 30 * time.Second

// sleepCtx waits d, or until ctx ends; it reports whether the wait ran out.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// acquire blocks until n messages may be held, or ctx ends. One caller
// acquires at a time (acquiring): callers taking the slots freed one by
// one in turns could each end up holding part of what they need and wait
// for the rest, with no poller able to receive while the messages held
// wait for a flush.
func (tk *tracker) acquire(ctx context.Context, n int) (int, error) {
	select {
	case tk.acquiring <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-tk.acquiring }()
	got := 0
	for got < n {
		select {
		case tk.slots <- struct{}{}:
			got++
		case <-ctx.Done():
			tk.releaseSlots(got)
			return 0, ctx.Err()
		}
	}
	return got, nil
}

func (tk *tracker) releaseSlots(n int) {
	for i := 0; i < n; i++ {
		<-tk.slots
	}
}

func (tk *tracker) hold(msg types.Message, now time.Time) {
	tk.mu.Lock()
	tk.msgs[aws.ToString(msg.ReceiptHandle)] = &held{receipt: aws.ToString(msg.ReceiptHandle), id: aws.ToString(msg.MessageId), received: now, deadline: now.Add(tk.visibility)}
	n := len(tk.msgs)
	tk.mu.Unlock()
	tk.m.held.Set(float64(n))
}

// forget stops tracking a message without deleting it: it reappears in the
// queue when its visibility ends.
func (tk *tracker) forget(receipt string) {
	tk.mu.Lock()
	_, ok := tk.msgs[receipt]
	delete(tk.msgs, receipt)
	n := len(tk.msgs)
	tk.mu.Unlock()
	if ok {
		tk.releaseSlots(1)
	}
	tk.m.held.Set(float64(n))
}

// nack is the ack of a message whose rows were not stored. While polling it
// is forgotten: it reappears when its visibility ends, which spaces out the
// retries. Once polling has stopped it stays held, no longer extended, so
// that the drain releases it (visibility 0) for another consumer at once.
func (tk *tracker) nack(receipt string) {
	if !tk.stopping.Load() {
		tk.forget(receipt)
		return
	}
	tk.mu.Lock()
	h, ok := tk.msgs[receipt]
	if ok {
		h.nacked = true
	}
	tk.mu.Unlock()
}

// ack queues a message for deletion.
func (tk *tracker) ack(receipt string) {
	tk.mu.Lock()
	if h, ok := tk.msgs[receipt]; ok {
		h.acked = true
	}
	tk.mu.Unlock()
	tk.deletes <- receipt
}

// runDeleter deletes acked messages in batches of ten, tk.deleters calls at
// once, until stop is closed and the queue of deletes is empty. A batch is
// sent when it has ten messages or its first has waited maxWait.
//
// One call after another would cap deletes at ten per round trip (500 to
// 1,000 a second at 10-20 ms a call): after a large flush the tail of the
// acked messages would wait longer than the queue's visibility timeout.
func (tk *tracker) runDeleter(stop <-chan struct{}) {
	const maxWait = 200 * time.Millisecond
	work := make(chan []string)
	var wg sync.WaitGroup
	for range tk.deleters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				tk.deleteBatch(b)
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	batch := make([]string, 0, 10)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	flush := func() {
		if len(batch) > 0 {
			work <- batch
			batch = make([]string, 0, 10)
		}
	}
	for {
		select {
		case r := <-tk.deletes:
			if len(batch) == 0 {
				timer.Reset(maxWait)
			}
			batch = append(batch, r)
			if len(batch) == 10 {
				flush()
			}
		case <-timer.C:
			flush()
		case <-stop:
			for {
				select {
				case r := <-tk.deletes:
					batch = append(batch, r)
					if len(batch) == 10 {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

// deleteBatch deletes up to ten messages, retrying only the entries that
// failed, a few times with backoff. A message that still cannot be deleted
// is forgotten: SQS redelivers it and the loader's dedupe drops the copy.
// When the drain's budget ends (delCtx), the messages not deleted stay held
// for the drain to release.
func (tk *tracker) deleteBatch(receipts []string) {
	pending := append([]string(nil), receipts...)
	for attempt := 0; attempt < 5 && len(pending) > 0; attempt++ {
		if attempt > 0 && !sleepCtx(tk.delCtx, time.Duration(100<<attempt)*time.Millisecond) {
			break
		}
		if tk.delCtx.Err() != nil {
			break
		}
		entries := make([]types.DeleteMessageBatchRequestEntry, len(pending))
		for i, r := range pending {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r)}
		}
		ctx, cancel := context.WithTimeout(tk.delCtx, callTimeout)
		out, err := tk.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(tk.queueURL), Entries: entries})
		cancel()
		tk.m.calls.WithLabelValues("delete").Inc()
		if err != nil {
			tk.log.Warn("delete batch failed; retrying", zap.Error(err), zap.Int("messages", len(pending)))
			continue
		}
		done := make([]bool, len(pending))
		for _, ok := range out.Successful {
			if i, valid := entryIndex(ok.Id, len(pending)); valid && !done[i] {
				done[i] = true
				tk.forget(pending[i])
				tk.m.deleted.Inc()
			}
		}
		for _, f := range out.Failed {
			tk.m.failedEntries.WithLabelValues("delete").Inc()
			if i, valid := entryIndex(f.Id, len(pending)); valid && !done[i] && receiptGone(f) {
				done[i] = true
				tk.forget(pending[i])
			}
		}
		// Failed entries, and any the answer left out, are tried again.
		var retry []string
		for i, r := range pending {
			if !done[i] {
				retry = append(retry, r)
			}
		}
		pending = retry
	}
	if tk.delCtx.Err() != nil {
		// The drain ran out of time: it releases these.
		return
	}
	for _, r := range pending {
		tk.log.Warn("message not deleted; it will be redelivered and deduped")
		tk.forget(r)
	}
}

// runExtender extends the visibility of held messages at half the queue's
// timeout, ten per call, until stop is closed.
func (tk *tracker) runExtender(stop <-chan struct{}) {
	tick, stopTick := tk.clock.Ticker(extendTick(tk.visibility))
	defer stopTick()
	for {
		select {
		case <-stop:
			return
		case <-tick:
			tk.extendDue(tk.clock.Now())
		}
	}
}

func (tk *tracker) extendDue(now time.Time) {
	var due []*held
	var oldest time.Time
	tk.mu.Lock()
	for _, h := range tk.msgs {
		// Acked messages too: a message waiting for its delete must not
		// become visible again.
		if !h.nacked && !h.lost && h.deadline.Sub(now) <= tk.visibility/2 {
			due = append(due, h)
		}
		if oldest.IsZero() || h.received.Before(oldest) {
			oldest = h.received
		}
	}
	tk.mu.Unlock()
	if !oldest.IsZero() {
		tk.m.oldestHeld.Set(now.Sub(oldest).Seconds())
	} else {
		tk.m.oldestHeld.Set(0)
	}
	// Calls run eight at a time: with tens of thousands of messages held,
	// one call after another could fall behind the timeouts.
	secs := int32(tk.visibility / time.Second)
	sem := make(chan struct{}, extendConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < len(due); i += 10 {
		batch := due[i:min(i+10, len(due))]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			tk.changeVisibility(tk.extCtx, batch, secs, now)
		}()
	}
	wg.Wait()
}

// extendConcurrency bounds the visibility calls in flight at once.
const extendConcurrency = 8

// changeVisibility sets the visibility of up to ten messages. The call can
// succeed with failed entries: those, and only those, are sent again at once,
// a few times with a short backoff, and each failed entry is counted. An
// entry refused for its receipt handle (the message is no longer in flight
// for us) is not retried and the message is no longer extended; it is still
// held until its rows are acked or nacked. A failed call is not retried here:
// an extension is tried again at the next tick, and a message whose release
// fails reappears when its timeout ends.
func (tk *tracker) changeVisibility(ctx context.Context, hs []*held, secs int32, now time.Time) {
	pending := hs
	for attempt := 0; attempt < 3 && len(pending) > 0; attempt++ {
		if attempt > 0 && !sleepCtx(ctx, time.Duration(50<<attempt)*time.Millisecond) {
			break
		}
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(pending))
		for i, h := range pending {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h.receipt), VisibilityTimeout: secs}
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		out, err := tk.api.ChangeMessageVisibilityBatch(cctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(tk.queueURL), Entries: entries})
		cancel()
		tk.m.calls.WithLabelValues("change_visibility").Inc()
		if err != nil {
			tk.log.Warn("change visibility failed", zap.Error(err), zap.Int("messages", len(pending)))
			return
		}
		ok := 0
		tk.mu.Lock()
		for _, e := range out.Successful {
			if i, valid := entryIndex(e.Id, len(pending)); valid {
				pending[i].deadline = now.Add(time.Duration(secs) * time.Second)
				ok++
			}
		}
		var retry []*held
		for _, f := range out.Failed {
			tk.m.failedEntries.WithLabelValues("change_visibility").Inc()
			i, valid := entryIndex(f.Id, len(pending))
			if !valid {
				continue
			}
			if receiptGone(f) {
				pending[i].lost = true
				continue
			}
			retry = append(retry, pending[i])
		}
		tk.mu.Unlock()
		if secs > 0 {
			tk.m.extensions.Add(float64(ok))
		}
		pending = retry
	}
	if len(pending) > 0 {
		tk.log.Warn("visibility not changed after retries", zap.Int("messages", len(pending)), zap.Int32("visibility_seconds", secs))
	}
}

// entryIndex parses the Id of a batch result entry: its index in the request.
func entryIndex(id *string, n int) (int, bool) {
	i, err := strconv.Atoi(aws.ToString(id))
	return i, err == nil && i >= 0 && i < n
}

// receiptGone reports whether a failed entry says the receipt handle is no
// longer good (the message was deleted, or its visibility lapsed and another
// receive took it): retrying it cannot succeed.
func receiptGone(f types.BatchResultErrorEntry) bool {
	switch aws.ToString(f.Code) {
	case "ReceiptHandleIsInvalid", "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight":
		return f.SenderFault
	}
	return false
}

// releaseAll sets the visibility of every message still held to zero, so
// another consumer takes it at once, and forgets it. It runs at the end of
// the drain, once deletes have stopped: a message still held then was not
// deleted (its rows were refused, never stored, or its delete did not get
// through in time). Calls run releaseConcurrency at once, and none outlives
// ctx; a message whose release fails reappears when its timeout ends.
func (tk *tracker) releaseAll(ctx context.Context) int {
	var hs []*held
	tk.mu.Lock()
	for _, h := range tk.msgs {
		hs = append(hs, h)
	}
	tk.mu.Unlock()
	now := tk.clock.Now()
	sem := make(chan struct{}, releaseConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < len(hs); i += 10 {
		batch := hs[i:min(i+10, len(hs))]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			tk.changeVisibility(ctx, batch, 0, now)
		}()
	}
	wg.Wait()
	for _, h := range hs {
		tk.forget(h.receipt)
	}
	return len(hs)
}

// releaseConcurrency bounds the release calls in flight at shutdown.
const releaseConcurrency = 16

func (tk *tracker) count() int {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return len(tk.msgs)
}

// unacked returns how many held messages are not queued for deletion.
func (tk *tracker) unacked() int {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	n := 0
	for _, h := range tk.msgs {
		if !h.acked {
			n++
		}
	}
	return n
}
