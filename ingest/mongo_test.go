package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

// MongoStore builds its own insert commands (issue 12, item 3): documents
// over the 16 MiB command limit together go in several commands, each
// counted once; a duplicate _id counts as stored, a document Mongo refuses
// is rejected alone, a document over 16 MiB is not sent; the write concern
// of mongo.uri goes with every insert.
func TestMongoStoreInsertCommands(t *testing.T) {
	st := stacktest.Get(t)
	mc, db := st.Mongo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := NewMongoStore(mc.Database(db)).WithWriteConcern(writeconcern.W1())
	doc := func(id string, pad int) bson.Raw {
		return rawDocument(nil, id, time.UnixMilli(1700000000000), mustParse(t, `{"event":"page_view","pad":"`+strings.Repeat("p", pad)+`"}`))
	}
	big := 6 << 20
	docs := []bson.Raw{doc("a", big), doc("b", big), doc("c", big), doc("d", 10)}
	perDoc, err := store.Store(ctx, "things", docs)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range perDoc {
		if e != nil {
			t.Errorf("document %d: %v", i, e)
		}
	}
	nested := rawDocument(nil, "nested", time.UnixMilli(1700000000000), mustParse(t, `{"event":"page_view","a":[[1]]}`))
	huge := doc("huge", maxDocument+1)
	perDoc, err = store.Store(ctx, "things", []bson.Raw{doc("a", 10), nested, doc("e", 10), huge})
	if err != nil {
		t.Fatal(err)
	}
	if perDoc[0] != nil || perDoc[2] != nil {
		t.Errorf("a duplicate _id and a new document: %v, %v; want both stored", perDoc[0], perDoc[2])
	}
	if !errors.Is(perDoc[1], ErrRejected) {
		t.Errorf("a nested array (FerretDB refuses it): %v, want ErrRejected", perDoc[1])
	}
	if !errors.Is(perDoc[3], ErrRejected) || !strings.Contains(perDoc[3].Error(), "10334") {
		t.Errorf("a document over 16 MiB: %v, want ErrRejected (10334)", perDoc[3])
	}
	n, err := mc.Database(db).Collection("things").CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("%d documents in the collection, want 5 (a, b, c, d, e)", n)
	}
}

func TestWriteConcernCommand(t *testing.T) {
	j := true
	for _, c := range []struct {
		wc   *writeconcern.WriteConcern
		want string
	}{
		{nil, ""},
		{&writeconcern.WriteConcern{}, ""},
		{writeconcern.Majority(), `{"w": "majority"}`},
		{&writeconcern.WriteConcern{W: 2, Journal: &j}, `{"w": {"$numberInt":"2"},"j": true}`},
	} {
		m := NewMongoStore(nil).WithWriteConcern(c.wc)
		got := ""
		if m.wc != nil {
			got = bsoncore.Document(m.wc).String()
		}
		if strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(c.want, " ", "") {
			t.Errorf("%+v: %s, want %s", c.wc, got, c.want)
		}
	}
}

// mustParse decodes a message body as serve does and returns the event's
// root, which rawDocument reads.
func mustParse(t *testing.T, s string) schema.Node {
	t.Helper()
	tables, err := os.ReadFile("../schema/testdata/tables.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sch, err := schema.Parse(tables)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := schema.NewDecoder(sch, schema.DefaultEnvelope()).Decode([]byte(s), "sqs-msg-1", time.UnixMilli(1700000000000))
	if err != nil {
		t.Fatal(err)
	}
	return ev.Root()
}

func TestDupIndex(t *testing.T) {
	raw := func(s string) bson.Raw {
		var d bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(s), false, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, c := range []struct {
		e    mongo.WriteError
		want string
	}{
		{mongo.WriteError{Code: 11000, Message: "E11000 duplicate key error collection: db.x index: _id_ dup key: { _id: \"a\" }"}, "_id_"},
		{mongo.WriteError{Code: 11000, Message: "E11000 duplicate key error collection: db.x index: u_1 dup key: { u: 1 }"}, "u_1"},
		{mongo.WriteError{Code: 11000, Message: "E11000 duplicate key error", Raw: raw(`{"keyPattern": {"_id": 1}}`)}, "_id_"},
		{mongo.WriteError{Code: 11000, Message: "E11000 duplicate key error collection: db.x"}, ""}, // FerretDB
	} {
		if got := dupIndex(c.e); got != c.want {
			t.Errorf("%q: %q, want %q", c.e.Message, got, c.want)
		}
	}
}

// Calls for one collection that arrive while inserts into it are under way
// go together in the next insert (issue 12: a poller's batch brings a few
// documents per collection, and FerretDB's cost per insert dominates):
// forty callers of three documents each need far fewer than forty inserts,
// and every document is stored and answered for.
func TestMongoStoreGroupsCalls(t *testing.T) {
	st := stacktest.Get(t)
	_, db := st.Mongo(t)
	var inserts atomic.Int64
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "insert" {
			inserts.Add(1)
		}
	}}
	mc, err := mongo.Connect(options.Client().ApplyURI(st.MongoURI).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(context.Background())
	store := NewMongoStore(mc.Database(db))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const callers, per = 40, 3
	var wg sync.WaitGroup
	errs := make(chan error, callers*per)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			docs := make([]bson.Raw, per)
			for j := range docs {
				docs[j] = rawDocument(nil, fmt.Sprintf("g-%d-%d", i, j), time.UnixMilli(1700000000000), mustParse(t, `{"event":"page_view"}`))
			}
			if i%2 == 1 {
				docs[0] = rawDocument(nil, "g-dup", time.UnixMilli(1700000000000), mustParse(t, `{"event":"page_view"}`)) // the same _id from every other caller
			}
			perDoc, err := store.Store(ctx, "grouped", docs)
			if err != nil {
				errs <- err
				return
			}
			if len(perDoc) != per {
				errs <- fmt.Errorf("caller %d: %d answers for %d documents", i, len(perDoc), per)
			}
			for _, e := range perDoc {
				if e != nil {
					errs <- e
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	n, err := mc.Database(db).Collection("grouped").CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(callers*per - callers/2 + 1); n != want {
		t.Errorf("%d documents stored, want %d", n, want)
	}
	if got := inserts.Load(); got >= callers {
		t.Errorf("%d inserts for %d calls: none went together", got, callers)
	} else {
		t.Logf("%d inserts for %d calls", got, callers)
	}

	// A caller whose context ends gets its error at once.
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, err := store.Store(done, "grouped", []bson.Raw{rawDocument(nil, "late", time.Now(), mustParse(t, `{"event":"page_view"}`))}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled caller: %v, want context.Canceled", err)
	}
}
