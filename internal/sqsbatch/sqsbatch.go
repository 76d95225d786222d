// Package sqsbatch sends messages to an SQS queue in batches: at most ten
// and 256 KiB a call, retrying only the entries that failed. `wharf send`
// (SendLines: JSON lines) and `wharf deadletter replay` send through it.
package sqsbatch

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/valyala/fastjson"
)

// SQS's limits.
const (
	MaxEntries = 10        // messages per SendMessageBatch
	MaxBytes   = 256 << 10 // bytes per SendMessageBatch, bodies and attributes
	MaxMessage = 1 << 20   // the largest message, body and attributes
)

// Client is the SQS call a sender makes.
type Client interface {
	SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Entry is one message to send.
type Entry struct {
	Body       string
	Attributes map[string]types.MessageAttributeValue
}

// Size is what e counts against MaxBytes and MaxMessage: its body and its
// attributes' names, types and values.
func (e Entry) Size() int {
	n := len(e.Body)
	for k, v := range e.Attributes {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue))
	}
	return n
}

// Batches gathers entries into batches that SQS takes in one call.
type Batches struct {
	batch []Entry
	size  int
}

// Add adds e, returning the batch to send first when e does not fit in
// the one being gathered (nil otherwise).
func (b *Batches) Add(e Entry) []Entry {
	var full []Entry
	if n := len(b.batch); n == MaxEntries || n > 0 && b.size+e.Size() > MaxBytes {
		full = b.Take()
	}
	b.batch = append(b.batch, e)
	b.size += e.Size()
	return full
}

// Take returns the batch gathered so far (nil when empty) and starts anew.
func (b *Batches) Take() []Entry {
	out := b.batch
	b.batch, b.size = nil, 0
	return out
}

// Send sends one batch (of at most MaxEntries and MaxBytes), retrying the
// entries that failed up to five times with backoff. An entry that SQS
// refuses as the sender's fault (too large, a bad attribute) fails it at
// once.
func Send(ctx context.Context, client Client, queueURL string, batch []Entry) error {
	pending := make(map[string]Entry, len(batch))
	for i, e := range batch {
		pending[strconv.Itoa(i)] = e
	}
	var last error
	for attempt := 0; attempt < 6 && len(pending) > 0; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
			}
		}
		entries := make([]types.SendMessageBatchRequestEntry, 0, len(pending))
		for id, e := range pending {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(e.Body), MessageAttributes: e.Attributes})
		}
		out, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
		if err != nil {
			last = err
			continue
		}
		for _, ok := range out.Successful {
			delete(pending, aws.ToString(ok.Id))
		}
		for _, f := range out.Failed {
			if f.SenderFault {
				return fmt.Errorf("send: SQS refused a message: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			}
			last = fmt.Errorf("send: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
		}
	}
	if len(pending) > 0 {
		if last == nil {
			last = fmt.Errorf("SQS did not answer for them")
		}
		return fmt.Errorf("send: %d messages not sent after retries: %w", len(pending), last)
	}
	return nil
}

// SendAll sends the batches it receives, workers at a time, until batches
// is closed. It returns how many entries were sent and how many failed, and
// the first error.
func SendAll(ctx context.Context, client Client, queueURL string, workers int, batches <-chan []Entry) (sent, failed int64, err error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				serr := Send(ctx, client, queueURL, b)
				mu.Lock()
				if serr != nil {
					failed += int64(len(b))
					err = cmp.Or(err, serr)
				} else {
					sent += int64(len(b))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return sent, failed, err
}

// Lines is what SendLines did.
type Lines struct {
	Read, Rejected int   // lines read, and of them not sent: not a JSON object
	Sent, Failed   int64 // messages sent, and not sent after retries
}

// SendLines sends each line of r that is a JSON object as a message,
// workers batches at a time (SendAll), and calls reject with the number
// and the fault of every other non-empty line. It returns the first error
// of a send, or of reading r.
func SendLines(ctx context.Context, client Client, queueURL string, workers int, r io.Reader, reject func(line int, why string)) (Lines, error) {
	var res Lines
	batches := make(chan []Entry)
	var sendErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res.Sent, res.Failed, sendErr = SendAll(ctx, client, queueURL, workers, batches)
	}()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 2<<20)
	var b Batches
	for sc.Scan() {
		res.Read++
		text := sc.Text()
		if text == "" {
			continue
		}
		if v, err := fastjson.Parse(text); err != nil || v.Type() != fastjson.TypeObject {
			res.Rejected++
			why := "not a JSON object"
			if err != nil {
				why = "not JSON: " + err.Error()
			}
			reject(res.Read, why)
			continue
		}
		if full := b.Add(Entry{Body: text}); full != nil {
			batches <- full
		}
	}
	if rest := b.Take(); rest != nil {
		batches <- rest
	}
	close(batches)
	<-done
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("read line %d: %w", res.Read+1, err)
	}
	return res, sendErr
}
