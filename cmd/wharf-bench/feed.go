package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// feedResult is what `feed` prints.
type feedResult struct {
	Sent       int64   `json:"sent"`
	Seconds    float64 `json:"seconds"`
	Keep       int64   `json:"keep"`
	MaxVisible int64   `json:"max_visible"` // the most messages seen waiting in the queue
}

// cmdFeed sends the JSON lines of a file to a queue while keeping at most
// about -keep messages waiting in it (ApproximateNumberOfMessages, read
// every 200 ms). A consumer that drains the queue meanwhile always finds a
// full queue, as with a pre-loaded backlog of the file's size, while the
// queue itself never holds more than -keep: fauxqs dequeues by shifting a
// JavaScript array and scans every in-flight message on each receive, so a
// backlog of a million messages slows it to a few hundred receives a
// second, which would measure fauxqs rather than the consumer.
func cmdFeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("feed", stderr)
	queueURL := fs.String("queue-url", "", "SQS queue (required)")
	file := fs.String("file", "", "JSON lines to send, one message each (required)")
	keep := fs.Int64("keep", 50000, "most messages to keep waiting in the queue")
	workers := fs.Int("workers", 8, "concurrent SendMessageBatch calls")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *queueURL == "" || *file == "" || *keep < 10 || *workers < 1 {
		return errors.New("feed: -queue-url and -file are required; -keep must be at least 10 and -workers at least 1")
	}
	f, err := os.Open(*file)
	if err != nil {
		return fmt.Errorf("feed: %w", err)
	}
	defer f.Close()
	client, err := newSQS(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fd := &feeder{client: client, queueURL: *queueURL, keep: *keep, cancel: cancel}
	fd.room = sync.NewCond(&fd.mu)
	if err := fd.readCount(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	batches, done := make(chan []string), make(chan struct{})
	go fd.readCounts(ctx, done)
	for range *workers {
		wg.Add(1)
		go func() { defer wg.Done(); fd.send(ctx, batches) }()
	}
	start := time.Now()
	readErr := readBatches(ctx, f, batches)
	close(batches)
	wg.Wait()
	close(done)
	if readErr != nil {
		return fmt.Errorf("feed: read %s: %w", *file, readErr)
	}
	if fd.firstErr != nil {
		return fd.firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("feed: %w", err)
	}
	return printJSON(stdout, feedResult{Sent: fd.sent.Load(), Seconds: round(time.Since(start).Seconds(), 3), Keep: *keep, MaxVisible: fd.maxVisible.Load()})
}

// readBatches sends the non-empty lines of r to batches, ten at a time,
// until r ends or ctx is done.
func readBatches(ctx context.Context, r io.Reader, batches chan<- []string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 2<<20)
	var batch []string
	for sc.Scan() && ctx.Err() == nil {
		if len(sc.Bytes()) == 0 {
			continue
		}
		batch = append(batch, sc.Text())
		if len(batch) == 10 {
			batches <- batch
			batch = nil
		}
	}
	if len(batch) > 0 && ctx.Err() == nil {
		batches <- batch
	}
	return sc.Err()
}

// feeder sends while at most about keep messages wait in the queue.
type feeder struct {
	client   *sqs.Client
	queueURL string
	keep     int64
	cancel   context.CancelFunc
	// visible estimates the waiting messages: the last count read plus
	// what was sent since.
	visible, maxVisible, sent atomic.Int64
	mu                        sync.Mutex
	room                      *sync.Cond // on mu: visible fell
	errOnce                   sync.Once
	firstErr                  error
}

// readCount reads the queue's depth.
func (fd *feeder) readCount(ctx context.Context) error {
	out, err := fd.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(fd.queueURL), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		return fmt.Errorf("feed: read queue depth: %w", err)
	}
	n, err := strconv.ParseInt(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)], 10, 64)
	if err != nil {
		return fmt.Errorf("feed: queue depth %q: %w", out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)], err)
	}
	fd.mu.Lock()
	fd.visible.Store(n)
	fd.room.Broadcast()
	fd.mu.Unlock()
	for old := fd.maxVisible.Load(); n > old && !fd.maxVisible.CompareAndSwap(old, n); old = fd.maxVisible.Load() {
	}
	return nil
}

// readCounts reads the depth every 200 ms until done (the senders are).
func (fd *feeder) readCounts(ctx context.Context, done <-chan struct{}) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			if err := fd.readCount(ctx); err != nil {
				fd.fail(err)
				return
			}
		}
	}
}

// fail stops the feed at its first error.
func (fd *feeder) fail(err error) {
	fd.errOnce.Do(func() { fd.firstErr = err; fd.cancel() })
	fd.mu.Lock()
	fd.room.Broadcast()
	fd.mu.Unlock()
}

// send sends the batches it receives, each when there is room, until
// batches is closed.
func (fd *feeder) send(ctx context.Context, batches <-chan []string) {
	for b := range batches {
		fd.mu.Lock()
		for fd.visible.Load() >= fd.keep && ctx.Err() == nil {
			fd.room.Wait()
		}
		fd.visible.Add(int64(len(b)))
		fd.mu.Unlock()
		if ctx.Err() != nil {
			continue // drain the channel
		}
		if err := sendLines(ctx, fd.client, fd.queueURL, b); err != nil {
			fd.fail(err)
			continue
		}
		fd.sent.Add(int64(len(b)))
	}
}

// sendLines sends up to ten bodies in one SendMessageBatch.
func sendLines(ctx context.Context, client *sqs.Client, queueURL string, bodies []string) error {
	entries := make([]types.SendMessageBatchRequestEntry, len(bodies))
	for i, b := range bodies {
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(b)}
	}
	out, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
	if err != nil {
		return fmt.Errorf("feed: send: %w", err)
	}
	if len(out.Failed) > 0 {
		return fmt.Errorf("feed: send: %d entries failed: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
	}
	return nil
}
