package ingest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	acked    bool      // queued for delete
	lost     bool      // SQS refused its receipt handle: it can no longer be extended
}

// ledger tracks held messages, caps how many there are, extends their
// visibility and deletes them in batches of ten.
type ledger struct {
	api        SQSAPI
	queueURL   string
	visibility time.Duration
	log        *zap.Logger
	m          *metrics

	slots chan struct{} // one token per message that may be held

	mu   sync.Mutex
	msgs map[string]*held // by receipt handle

	deletes chan string
}

func newLedger(api SQSAPI, queueURL string, visibility time.Duration, maxInFlight int, log *zap.Logger, m *metrics) *ledger {
	return &ledger{
		api: api, queueURL: queueURL, visibility: visibility, log: log, m: m,
		slots:   make(chan struct{}, maxInFlight),
		msgs:    map[string]*held{},
		deletes: make(chan string, maxInFlight),
	}
}

// acquire blocks until n messages may be held, or ctx ends.
func (l *ledger) acquire(ctx context.Context, n int) (int, error) {
	got := 0
	for got < n {
		select {
		case l.slots <- struct{}{}:
			got++
		case <-ctx.Done():
			l.releaseSlots(got)
			return 0, ctx.Err()
		}
	}
	return got, nil
}

func (l *ledger) releaseSlots(n int) {
	for i := 0; i < n; i++ {
		<-l.slots
	}
}

func (l *ledger) hold(msg types.Message, now time.Time) {
	l.mu.Lock()
	l.msgs[aws.ToString(msg.ReceiptHandle)] = &held{receipt: aws.ToString(msg.ReceiptHandle), id: aws.ToString(msg.MessageId), received: now, deadline: now.Add(l.visibility)}
	n := len(l.msgs)
	l.mu.Unlock()
	l.m.held.Set(float64(n))
}

// forget stops tracking a message without deleting it: it reappears in the
// queue when its visibility ends.
func (l *ledger) forget(receipt string) {
	l.mu.Lock()
	_, ok := l.msgs[receipt]
	delete(l.msgs, receipt)
	n := len(l.msgs)
	l.mu.Unlock()
	if ok {
		l.releaseSlots(1)
	}
	l.m.held.Set(float64(n))
}

// ack queues a message for deletion.
func (l *ledger) ack(receipt string) {
	l.mu.Lock()
	if h, ok := l.msgs[receipt]; ok {
		h.acked = true
	}
	l.mu.Unlock()
	l.deletes <- receipt
}

// runDeleter deletes acked messages in batches of ten until stop is closed
// and the queue of deletes is empty.
func (l *ledger) runDeleter(stop <-chan struct{}) {
	const maxWait = 200 * time.Millisecond
	batch := make([]string, 0, 10)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	flush := func() {
		if len(batch) > 0 {
			l.deleteBatch(batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case r := <-l.deletes:
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
				case r := <-l.deletes:
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
func (l *ledger) deleteBatch(receipts []string) {
	pending := append([]string(nil), receipts...)
	for attempt := 0; attempt < 5 && len(pending) > 0; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(100<<attempt) * time.Millisecond)
		}
		entries := make([]types.DeleteMessageBatchRequestEntry, len(pending))
		for i, r := range pending {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r)}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := l.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(l.queueURL), Entries: entries})
		cancel()
		l.m.calls.WithLabelValues("delete").Inc()
		if err != nil {
			l.log.Warn("delete batch failed; retrying", zap.Error(err), zap.Int("messages", len(pending)))
			continue
		}
		done := make([]bool, len(pending))
		for _, ok := range out.Successful {
			if i, valid := entryIndex(ok.Id, len(pending)); valid && !done[i] {
				done[i] = true
				l.forget(pending[i])
				l.m.deleted.Inc()
			}
		}
		for _, f := range out.Failed {
			l.m.failedEntries.WithLabelValues("delete").Inc()
			if i, valid := entryIndex(f.Id, len(pending)); valid && !done[i] && receiptGone(f) {
				done[i] = true
				l.forget(pending[i])
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
	for _, r := range pending {
		l.log.Warn("message not deleted; it will be redelivered and deduped")
		l.forget(r)
	}
}

// runExtender extends the visibility of held messages at half the queue's
// timeout, ten per call, until stop is closed.
func (l *ledger) runExtender(stop <-chan struct{}) {
	tick := l.visibility / 20
	if tick < 100*time.Millisecond {
		tick = 100 * time.Millisecond
	}
	if tick > 2*time.Second {
		tick = 2 * time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			l.extendDue(now)
		}
	}
}

func (l *ledger) extendDue(now time.Time) {
	var due []*held
	var oldest time.Time
	l.mu.Lock()
	for _, h := range l.msgs {
		if !h.acked && !h.lost && h.deadline.Sub(now) <= l.visibility/2 {
			due = append(due, h)
		}
		if oldest.IsZero() || h.received.Before(oldest) {
			oldest = h.received
		}
	}
	l.mu.Unlock()
	if !oldest.IsZero() {
		l.m.oldestHeld.Set(now.Sub(oldest).Seconds())
	} else {
		l.m.oldestHeld.Set(0)
	}
	// Calls run eight at a time: with tens of thousands of messages held,
	// one call after another could fall behind the timeouts.
	secs := int32(l.visibility / time.Second)
	sem := make(chan struct{}, extendConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < len(due); i += 10 {
		batch := due[i:min(i+10, len(due))]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l.changeVisibility(batch, secs, now)
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
func (l *ledger) changeVisibility(hs []*held, secs int32, now time.Time) {
	pending := hs
	for attempt := 0; attempt < 3 && len(pending) > 0; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
		}
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(pending))
		for i, h := range pending {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h.receipt), VisibilityTimeout: secs}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := l.api.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(l.queueURL), Entries: entries})
		cancel()
		l.m.calls.WithLabelValues("change_visibility").Inc()
		if err != nil {
			l.log.Warn("change visibility failed", zap.Error(err), zap.Int("messages", len(pending)))
			return
		}
		ok := 0
		l.mu.Lock()
		for _, e := range out.Successful {
			if i, valid := entryIndex(e.Id, len(pending)); valid {
				pending[i].deadline = now.Add(time.Duration(secs) * time.Second)
				ok++
			}
		}
		var retry []*held
		for _, f := range out.Failed {
			l.m.failedEntries.WithLabelValues("change_visibility").Inc()
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
		l.mu.Unlock()
		if secs > 0 {
			l.m.extensions.Add(float64(ok))
		}
		pending = retry
	}
	if len(pending) > 0 {
		l.log.Warn("visibility not changed after retries", zap.Int("messages", len(pending)), zap.Int32("visibility_seconds", secs))
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

// releaseAll sets the visibility of every held message that is not queued
// for deletion to zero, so another consumer takes it at once.
func (l *ledger) releaseAll() int {
	var hs []*held
	l.mu.Lock()
	for _, h := range l.msgs {
		if !h.acked {
			hs = append(hs, h)
		}
	}
	l.mu.Unlock()
	now := time.Now()
	for i := 0; i < len(hs); i += 10 {
		l.changeVisibility(hs[i:min(i+10, len(hs))], 0, now)
	}
	for _, h := range hs {
		l.forget(h.receipt)
	}
	return len(hs)
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

// unacked returns how many held messages are not queued for deletion.
func (l *ledger) unacked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, h := range l.msgs {
		if !h.acked {
			n++
		}
	}
	return n
}
