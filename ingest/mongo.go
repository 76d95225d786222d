package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// RawStore writes raw event documents. Store returns, per document, nil when
// it is stored (a duplicate of its _id counts: the document is already
// there) or the error that kept it out, wrapping ErrRejected when the store
// refuses that document for good; err is set when the whole call failed,
// and wraps ErrUnavailable when the store could not be reached or ErrDenied
// when it refused wharf's credentials or permissions.
type RawStore interface {
	Store(ctx context.Context, collection string, docs []bson.Raw) (perDoc []error, err error)
}

// ErrUnavailable marks a RawStore error that says the store could not be
// reached (a network error, no server to select, a timeout), as opposed to
// a write it refused. The consumer retries such a call while it holds the
// messages, instead of leaving them for redelivery.
var ErrUnavailable = errors.New("raw store unavailable")

// ErrDenied marks a RawStore error that says the store refused wharf itself:
// its credentials (authentication failed) or its permissions (not
// authorized). No write can succeed until an operator fixes them, so the
// consumer treats it as an outage of the whole process: it stops polling
// and keeps the messages it holds, extended, until a write goes through.
var ErrDenied = errors.New("raw store denied access")

// ErrRejected marks a per-document RawStore error: the store refuses that
// document and would refuse it again (a validator, a document too large,
// a key or value it cannot store, a duplicate on a unique index other than
// _id). The consumer dead-letters its message (ReasonRawWriteRejected).
var ErrRejected = errors.New("raw document rejected")

// deniedCodes are server error codes that refuse wharf's credentials or
// permissions: Unauthorized, AuthenticationFailed, UserNotFound, and
// Atlas's AtlasError (a user not allowed an action, a quota exceeded).
var deniedCodes = []int{13, 18, 11, 8000}

// rejectedCodes are write error codes that refuse one document for good:
// BadValue (FerretDB: nested arrays, invalid key names), DollarPrefixedFieldName,
// EmptyFieldName, DottedFieldName, DocumentValidationFailure, KeyTooLong and
// BSONObjectTooLarge. A write error of any other code leaves the message for
// redelivery, as a failure that may pass.
var rejectedCodes = []int{2, 52, 56, 57, 121, 17280, 10334}

// dupCodes are the duplicate-key write error codes.
var dupCodes = []int{11000, 11001, 12582}

// maxDocument is the largest BSON document MongoDB stores (16 MiB): a larger
// one is rejected without being sent.
const maxDocument = 16 << 20

// maxInsertDocs bounds the documents of one insert command (Mongo takes
// up to 100,000).
const maxInsertDocs = 1000

// MongoStore is a RawStore over a MongoDB (or FerretDB) database.
type MongoStore struct {
	db *mongo.Database
	wc bsoncore.Document // the writeConcern of each insert; nil: the server's default

	mu     sync.Mutex
	unique map[string]uniqueIndexes // by collection
	groups map[string]*group        // by collection: calls waiting to be sent
}

var _ RawStore = (*MongoStore)(nil)

// NewMongoStore returns a RawStore writing to db.
func NewMongoStore(db *mongo.Database) *MongoStore { return &MongoStore{db: db} }

// WithWriteConcern makes every insert carry wc (the client's, from
// mongo.uri's w and journal options; options.Client().ApplyURI(uri).WriteConcern):
// Store sends its own insert command, which takes no write concern from
// the client. nil, or one that sets nothing, leaves the server's default.
func (m *MongoStore) WithWriteConcern(wc *writeconcern.WriteConcern) *MongoStore {
	if wc == nil || wc.W == nil && wc.Journal == nil {
		m.wc = nil
		return m
	}
	idx, doc := bsoncore.AppendDocumentStart(nil)
	switch w := wc.W.(type) {
	case string:
		doc = bsoncore.AppendStringElement(doc, "w", w)
	case int:
		doc = bsoncore.AppendInt32Element(doc, "w", int32(w))
	}
	if wc.Journal != nil {
		doc = bsoncore.AppendBooleanElement(doc, "j", *wc.Journal)
	}
	m.wc, _ = bsoncore.AppendDocumentEnd(doc, idx)
	return m
}

// Store inserts docs with unordered insert commands that it builds from the
// documents' bytes (as few as fit under Mongo's 16 MiB command size: one
// for a batch of SQS messages). Collection.InsertMany would re-encode every
// document and decode every _id back into a Go value, a fifth of serve's
// CPU. A document counts as stored when it was inserted, or when its write
// error is a duplicate key on _id: when the error names the _id index
// (MongoDB), or names none (FerretDB) and _id's is the collection's only
// unique index (listIndexes, read at most once a minute). Otherwise the
// key may belong to another unique index, and the _id is looked up: a
// document with it must be in the collection. (FerretDB answers a find by
// _id by scanning the whole collection: a lookup per duplicate made `make
// demo`'s raw writes slower as the collections grew.) A
// write-concern error fails the call. The command is not retried by the
// driver (it carries no transaction number); an error that says the
// primary could not take it (a failover, a shutdown) wraps ErrUnavailable,
// and the caller retries: an insert of the same _ids again is harmless.
//
// Calls for the same collection that arrive while up to groupWriters
// inserts into it are under way wait and go together in the next one (a
// group commit, at most groupDocs documents): every poller's batch brings
// a few documents per collection, and an insert of three documents costs
// Mongo (FerretDB above all) several times per document what one of thirty
// does. A call alone is sent at once. A call whose ctx ends returns
// ctx.Err() at once; its documents may still be written (a redelivery then
// finds them: a duplicate of its _id).
func (m *MongoStore) Store(ctx context.Context, collection string, docs []bson.Raw) ([]error, error) {
	c := &groupCall{ctx: ctx, docs: docs, done: make(chan struct{})}
	m.mu.Lock()
	if m.groups == nil {
		m.groups = map[string]*group{}
	}
	g := m.groups[collection]
	if g == nil {
		g = &group{}
		m.groups[collection] = g
	}
	g.pending = append(g.pending, c)
	if g.writers < groupWriters {
		g.writers++
		go m.write(collection, g)
	}
	m.mu.Unlock()
	select {
	case <-c.done:
		return c.perDoc, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// groupWriters bounds the inserts into one collection under way at once,
// and groupDocs the documents of one (the calls it takes whole).
const (
	groupWriters = 2
	groupDocs    = 500
)

type group struct {
	pending []*groupCall
	writers int // write goroutines running
}

type groupCall struct {
	ctx    context.Context
	docs   []bson.Raw
	perDoc []error
	err    error
	done   chan struct{}
}

// write sends the pending calls of a collection, as many together as
// groupDocs allows, until none is left. A call whose ctx has ended is
// dropped.
func (m *MongoStore) write(collection string, g *group) {
	for {
		m.mu.Lock()
		var take []*groupCall
		n := 0
		for len(g.pending) > 0 && (len(take) == 0 || n+len(g.pending[0].docs) <= groupDocs) {
			c := g.pending[0]
			g.pending[0] = nil
			g.pending = g.pending[1:]
			if c.ctx.Err() != nil {
				continue
			}
			take = append(take, c)
			n += len(c.docs)
		}
		if len(take) == 0 {
			g.writers--
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		docs := take[0].docs
		if len(take) > 1 {
			docs = make([]bson.Raw, 0, n)
			for _, c := range take {
				docs = append(docs, c.docs...)
			}
		}
		// The first call's context bounds the insert (its values, not its
		// end: the others wait for it too).
		perDoc, err := m.store(context.WithoutCancel(take[0].ctx), collection, docs)
		at := 0
		for _, c := range take {
			if err != nil {
				c.err = err
			} else {
				c.perDoc = perDoc[at : at+len(c.docs) : at+len(c.docs)]
			}
			at += len(c.docs)
			close(c.done)
		}
	}
}

// store inserts docs now (Store's work, for one group of calls).
func (m *MongoStore) store(ctx context.Context, collection string, docs []bson.Raw) ([]error, error) {
	perDoc := make([]error, len(docs))
	sent := make([]int, 0, len(docs)) // index in docs of each document sent
	for i, d := range docs {
		if len(d) > maxDocument {
			perDoc[i] = fmt.Errorf("insert into %s: %w: code 10334 (BSONObjectTooLarge): the document is %d bytes, more than %d", collection, ErrRejected, len(d), maxDocument)
			continue
		}
		sent = append(sent, i)
	}
	var dups []int // indexes in docs
	for len(sent) > 0 {
		// As many documents as fit in one command of at most maxDocument
		// bytes of documents (at least one).
		// (An array element costs at most 8 bytes more than its document;
		// Mongo takes a command up to 16 KiB over the document limit.)
		n, size := 0, 1024
		for n < len(sent) && n < maxInsertDocs && (n == 0 || size+len(docs[sent[n]])+8 <= maxDocument) {
			size += len(docs[sent[n]]) + 8
			n++
		}
		chunk := sent[:n]
		sent = sent[n:]
		d, err := m.insert(ctx, collection, docs, chunk, perDoc)
		if err != nil {
			return nil, err
		}
		dups = append(dups, d...)
	}
	if len(dups) == 0 {
		return perDoc, nil
	}
	found, err := m.present(ctx, m.db.Collection(collection), docs, dups)
	if err != nil {
		return nil, fmt.Errorf("insert into %s: look up duplicate _ids: %w", collection, err)
	}
	for _, i := range dups {
		if !found[idKey(docs[i])] {
			perDoc[i] = fmt.Errorf("insert into %s: %w: code 11000: duplicate key on a unique index other than _id (no document has its _id)", collection, ErrRejected)
		}
	}
	return perDoc, nil
}

// insert sends one unordered insert command of docs[sent...], sets
// perDoc of the documents refused, and returns those refused as
// duplicates (indexes in docs).
func (m *MongoStore) insert(ctx context.Context, collection string, docs []bson.Raw, sent []int, perDoc []error) ([]int, error) {
	size := 64 + len(collection) + len(m.wc)
	for _, i := range sent {
		size += len(docs[i]) + 8
	}
	idx, cmd := bsoncore.AppendDocumentStart(make([]byte, 0, size))
	cmd = bsoncore.AppendStringElement(cmd, "insert", collection)
	var aidx int32
	aidx, cmd = bsoncore.AppendArrayElementStart(cmd, "documents")
	for j, i := range sent {
		cmd = bsoncore.AppendDocumentElement(cmd, strconv.Itoa(j), docs[i])
	}
	cmd, _ = bsoncore.AppendArrayEnd(cmd, aidx)
	cmd = bsoncore.AppendBooleanElement(cmd, "ordered", false)
	if m.wc != nil {
		cmd = bsoncore.AppendDocumentElement(cmd, "writeConcern", m.wc)
	}
	cmd, _ = bsoncore.AppendDocumentEnd(cmd, idx)

	err := m.db.RunCommand(ctx, bson.Raw(cmd)).Err()
	if err == nil {
		return nil, nil
	}
	if se, ok := errors.AsType[mongo.ServerError](err); ok && slices.ContainsFunc(deniedCodes, se.HasErrorCode) {
		return nil, fmt.Errorf("insert into %s: %w: %w", collection, ErrDenied, err)
	}
	we, ok := errors.AsType[mongo.WriteException](err)
	if !ok {
		if unreachable(err) || notPrimary(err) {
			return nil, fmt.Errorf("insert into %s: %w: %w", collection, ErrUnavailable, err)
		}
		return nil, fmt.Errorf("insert into %s: %w", collection, err)
	}
	if we.WriteConcernError != nil {
		return nil, fmt.Errorf("insert into %s: write concern: %s", collection, we.WriteConcernError.Message)
	}
	var dups, unnamed []int
	for _, e := range we.WriteErrors {
		if e.Index < 0 || e.Index >= len(sent) {
			return nil, fmt.Errorf("insert into %s: write error for unknown index %d: %s", collection, e.Index, e.Message)
		}
		i := sent[e.Index]
		switch {
		case slices.ContainsFunc(dupCodes, e.HasErrorCode):
			switch dupIndex(e) {
			case "_id_": // stored already: a redelivery
			case "":
				unnamed = append(unnamed, i)
			default:
				dups = append(dups, i)
			}
		case slices.ContainsFunc(rejectedCodes, e.HasErrorCode):
			perDoc[i] = fmt.Errorf("insert into %s: %w: code %d: %s", collection, ErrRejected, e.Code, e.Message)
		default:
			perDoc[i] = fmt.Errorf("insert into %s: code %d: %s", collection, e.Code, e.Message)
		}
	}
	if len(unnamed) > 0 {
		// FerretDB names no index: when _id's is the collection's only
		// unique index, the key is the _id's.
		if only, err := m.onlyIDUnique(ctx, collection); err != nil || !only {
			dups = append(dups, unnamed...)
		}
	}
	return dups, nil
}

// dupIndex is the name of the index a duplicate-key write error names
// (MongoDB: "… index: NAME dup key: …", and keyPattern), "_id_" for a
// keyPattern of _id alone, or "" when it names none (FerretDB).
func dupIndex(e mongo.WriteError) string {
	if kp, ok := e.Raw.Lookup("keyPattern").DocumentOK(); ok {
		if elems, err := kp.Elements(); err == nil && len(elems) == 1 && elems[0].Key() == "_id" {
			return "_id_"
		}
	}
	_, rest, ok := strings.Cut(e.Message, " index: ")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, " ")
	return name
}

// uniqueIndexTTL is how long MongoStore trusts what it read of a
// collection's unique indexes: an index created meanwhile is seen within it.
const uniqueIndexTTL = time.Minute

type uniqueIndexes struct {
	onlyID bool
	at     time.Time
}

// onlyIDUnique reports whether the collection's only unique index is _id's
// (listIndexes, at most once per uniqueIndexTTL). A collection that does
// not exist yet has none but _id's.
func (m *MongoStore) onlyIDUnique(ctx context.Context, collection string) (bool, error) {
	m.mu.Lock()
	u, ok := m.unique[collection]
	m.mu.Unlock()
	if ok && time.Since(u.at) < uniqueIndexTTL {
		return u.onlyID, nil
	}
	cur, err := m.db.Collection(collection).Indexes().List(ctx)
	if err != nil {
		return false, err
	}
	defer cur.Close(ctx)
	only := true
	for cur.Next(ctx) {
		unique, _ := cur.Current.Lookup("unique").BooleanOK()
		name, _ := cur.Current.Lookup("name").StringValueOK()
		if unique && name != "_id_" {
			only = false
		}
	}
	if err := cur.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	if m.unique == nil {
		m.unique = map[string]uniqueIndexes{}
	}
	m.unique[collection] = uniqueIndexes{onlyID: only, at: time.Now()}
	m.mu.Unlock()
	return only, nil
}

// notPrimaryCodes are the server error codes that say the server could not
// take a write now, for a failover or a shutdown (the codes on which the
// driver retries a retryable write): ShutdownInProgress,
// PrimarySteppedDown, NotWritablePrimary, InterruptedAtShutdown,
// InterruptedDueToReplStateChange, NotPrimaryNoSecondaryOk,
// NotPrimaryOrSecondary, and HostUnreachable, HostNotFound,
// NetworkTimeout, ExceededTimeLimit and SocketException from a mongos.
var notPrimaryCodes = []int{6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}

// notPrimary reports whether err says the server could not take the write
// now (notPrimaryCodes, or the RetryableWriteError label).
func notPrimary(err error) bool {
	se, ok := errors.AsType[mongo.ServerError](err)
	return ok && (slices.ContainsFunc(notPrimaryCodes, se.HasErrorCode) || se.HasErrorLabel("RetryableWriteError"))
}

// present returns the keys (idKey) of the _ids of docs[idx] that are in coll.
func (m *MongoStore) present(ctx context.Context, coll *mongo.Collection, docs []bson.Raw, idx []int) (map[string]bool, error) {
	// One equality per _id, not one $in: an equality on _id is what
	// MongoDB answers from its index, and FerretDB scans the collection
	// for a $in at least as long; a batch holds few duplicates.
	found := map[string]bool{}
	for _, i := range idx {
		var doc bson.Raw
		err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: docs[i].Lookup("_id")}}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&doc)
		switch {
		case err == nil:
			found[idKey(doc)] = true
		case errors.Is(err, mongo.ErrNoDocuments):
		case unreachable(err):
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		default:
			return nil, err
		}
	}
	return found, nil
}

// unreachable reports whether err says Mongo could not be reached, or
// that the driver's connection pool was cleared after another operation
// failed (a connection error, or a handshake Mongo refused): retryable.
func unreachable(err error) bool {
	var sse topology.ServerSelectionError
	var pce driver.RetryablePoolError
	return mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.As(err, &sse) || errors.As(err, &pce) && pce.Retryable()
}

// idKey is a document's _id as a comparable key: its BSON type and bytes.
func idKey(doc bson.Raw) string {
	v := doc.Lookup("_id")
	return string(rune(v.Type)) + string(v.Value)
}
