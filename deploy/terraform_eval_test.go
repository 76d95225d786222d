package deploy

import (
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/wharfdata/wharf/internal/stacktest"
)

// tfFuncs are the Terraform functions the module's locals and validations
// call, from the same libraries Terraform takes them from.
var tfFuncs = map[string]function.Function{
	"min": stdlib.MinFunc, "max": stdlib.MaxFunc, "ceil": stdlib.CeilFunc, "floor": stdlib.FloorFunc,
	"merge": stdlib.MergeFunc, "concat": stdlib.ConcatFunc, "compact": stdlib.CompactFunc, "distinct": stdlib.DistinctFunc,
	"split": stdlib.SplitFunc, "join": stdlib.JoinFunc, "slice": stdlib.SliceFunc, "element": stdlib.ElementFunc,
	"length": stdlib.LengthFunc, "keys": stdlib.KeysFunc, "contains": stdlib.ContainsFunc, "regex": stdlib.RegexFunc,
	"trimsuffix": stdlib.TrimSuffixFunc, "can": tryfunc.CanFunc, "try": tryfunc.TryFunc,
	"tostring": function.New(&function.Spec{
		Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowNull: true}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return convert.Convert(args[0], cty.String)
		},
	}),
}

// tfEval evaluates the module's locals (and other expressions) for given
// variable values, as terraform plan would: variables not given take their
// defaults; resources and data sources are unknown.
type tfEval struct {
	x      *tf
	vars   map[string]cty.Value
	locals map[string]hclsyntax.Expression
	done   map[string]cty.Value
}

func (x *tf) eval(t *testing.T, vars map[string]cty.Value) *tfEval {
	t.Helper()
	e := &tfEval{x: x, vars: map[string]cty.Value{}, locals: map[string]hclsyntax.Expression{}, done: map[string]cty.Value{}}
	for _, b := range x.blocks {
		switch b.Type {
		case "variable":
			v := cty.DynamicVal
			if a := b.Body.Attributes["default"]; a != nil {
				d, diags := a.Expr.Value(nil)
				if diags.HasErrors() {
					t.Fatalf("variable %s: default: %s", b.Labels[0], diags.Error())
				}
				v = d
			}
			e.vars[b.Labels[0]] = v
		case "locals":
			for name, a := range b.Body.Attributes {
				e.locals[name] = a.Expr
			}
		}
	}
	for k, v := range vars {
		if _, ok := e.vars[k]; !ok {
			t.Fatalf("no variable %q", k)
		}
		e.vars[k] = v
	}
	return e
}

func (e *tfEval) ctx() *hcl.EvalContext {
	vars := map[string]cty.Value{"var": cty.ObjectVal(e.vars), "local": cty.ObjectVal(e.done), "data": cty.DynamicVal}
	for _, b := range e.x.blocks {
		if b.Type == "resource" {
			vars[b.Labels[0]] = cty.DynamicVal
		}
	}
	if len(e.done) == 0 {
		vars["local"] = cty.EmptyObjectVal
	}
	return &hcl.EvalContext{Variables: vars, Functions: tfFuncs}
}

// value evaluates ex after the locals it refers to.
func (e *tfEval) value(t *testing.T, ex hclsyntax.Expression) cty.Value {
	t.Helper()
	for _, tr := range ex.Variables() {
		if tr.RootName() == "local" {
			e.local(t, tr[1].(hcl.TraverseAttr).Name)
		}
	}
	v, diags := ex.Value(e.ctx())
	if diags.HasErrors() {
		t.Fatalf("%s: %s", ex.Range(), diags.Error())
	}
	return v
}

func (e *tfEval) local(t *testing.T, name string) cty.Value {
	t.Helper()
	if v, ok := e.done[name]; ok {
		return v
	}
	ex, ok := e.locals[name]
	if !ok {
		t.Fatalf("no local.%s", name)
	}
	v := e.value(t, ex)
	e.done[name] = v
	return v
}

// valid evaluates every validation condition of variable name, as
// terraform plan does before anything else.
func (e *tfEval) valid(t *testing.T, name string) bool {
	t.Helper()
	b := e.x.block("variable", name)
	if b == nil {
		t.Fatalf("no variable %q", name)
	}
	ok := true
	for _, vb := range b.Body.Blocks {
		if vb.Type == "validation" {
			v := e.value(t, vb.Body.Attributes["condition"].Expr)
			ok = ok && v.True()
		}
	}
	return ok
}

// attrExpr is the expression of attribute path (a.b.c through nested
// blocks) of a block.
func attrExpr(b *hclsyntax.Block, path ...string) hclsyntax.Expression {
	body := b.Body
	for _, p := range path[:len(path)-1] {
		var next *hclsyntax.Body
		for _, sb := range body.Blocks {
			if sb.Type == p {
				next = sb.Body
				break
			}
		}
		if next == nil {
			return nil
		}
		body = next
	}
	if a := body.Attributes[path[len(path)-1]]; a != nil {
		return a.Expr
	}
	return nil
}

// envValue finds name in a list of {name, value} objects.
func envValue(t *testing.T, env cty.Value, name string) (cty.Value, bool) {
	t.Helper()
	for it := env.ElementIterator(); it.Next(); {
		_, kv := it.Element()
		if kv.GetAttr("name").AsString() == name {
			return kv.GetAttr("value"), true
		}
	}
	return cty.NilVal, false
}

// Issue 13, item 2: each serve task's WHARF_SQS_MAX_IN_FLIGHT is derived
// from the task maximum, so that every task polling at once — a deploy's
// surge included — holds at most the budget, under SQS's ~120,000 in
// flight; extra_environment cannot raise it; the backfill task (no queue)
// keeps the application's default.
func TestTerraformInFlightDerived(t *testing.T) {
	x := parseTerraform(t)
	for _, maxTasks := range []int64{1, 2, 3, 7, 8, 16, 50, 100} {
		for _, surge := range []int64{101, 150, 200} {
			e := x.eval(t, map[string]cty.Value{"max_tasks": cty.NumberIntVal(maxTasks), "deployment_maximum_percent": cty.NumberIntVal(surge)})
			env := e.local(t, "serve_environment")
			v, ok := envValue(t, env, "WHARF_SQS_MAX_IN_FLIGHT")
			if !ok {
				t.Fatal("the serve task definition's environment has no WHARF_SQS_MAX_IN_FLIGHT")
			}
			if !v.Type().Equals(cty.String) || !v.IsKnown() {
				t.Fatalf("WHARF_SQS_MAX_IN_FLIGHT is %#v, want a known string", v)
			}
			perTask, err := strconv.ParseInt(v.AsString(), 10, 64)
			if err != nil {
				t.Fatalf("WHARF_SQS_MAX_IN_FLIGHT %q: %v", v.AsString(), err)
			}
			// Tasks polling at once: max_tasks, and during a deploy the old
			// ones too, up to deployment_maximum_percent.
			peak := (maxTasks*surge + 99) / 100
			if total := perTask * peak; total > 110000 {
				t.Errorf("max_tasks %d, deploy at %d%%: %d tasks × %d = %d in flight, over the 110,000 budget (SQS: ~120,000)", maxTasks, surge, peak, perTask, total)
			}
			if perTask < 10 {
				t.Errorf("max_tasks %d: %d in flight per task, below wharf's minimum of 10", maxTasks, perTask)
			}
		}
	}
	// The defaults: 8 tasks, 200%.
	e := x.eval(t, nil)
	v, _ := envValue(t, e.local(t, "serve_environment"), "WHARF_SQS_MAX_IN_FLIGHT")
	if v.AsString() != "6875" {
		t.Errorf("default WHARF_SQS_MAX_IN_FLIGHT %s, want 6875 (110,000 / 16 tasks)", v.AsString())
	}

	// extra_environment is refused with it, and cannot win if it got in.
	e = x.eval(t, map[string]cty.Value{"extra_environment": cty.MapVal(map[string]cty.Value{"WHARF_SQS_MAX_IN_FLIGHT": cty.StringVal("100000")})})
	if e.valid(t, "extra_environment") {
		t.Error("extra_environment may set WHARF_SQS_MAX_IN_FLIGHT")
	}
	if v, _ := envValue(t, e.local(t, "serve_environment"), "WHARF_SQS_MAX_IN_FLIGHT"); v.AsString() == "100000" {
		t.Error("extra_environment overrides the derived WHARF_SQS_MAX_IN_FLIGHT")
	}
	if _, ok := envValue(t, x.eval(t, nil).local(t, "backfill_environment"), "WHARF_SQS_MAX_IN_FLIGHT"); ok {
		t.Error("the backfill task gets the serve tasks' in-flight share")
	}

	// The task definitions use them.
	serve := x.src(x.block("resource", "aws_ecs_task_definition", "serve").Range())
	if !strings.Contains(serve, "environment            = local.serve_environment") {
		t.Error("the serve task definition does not use local.serve_environment")
	}
	if x.block("resource", "aws_ecs_service", "serve") == nil || !strings.Contains(x.src(x.block("resource", "aws_ecs_service", "serve").Range()), "deployment_maximum_percent         = var.deployment_maximum_percent") {
		t.Error("the service's deployment_maximum_percent is not var.deployment_maximum_percent, which the budget counts")
	}
}

// Issue 13, item 3: autoscaling is one target tracking policy on the
// backlog per task (visible messages ÷ the service's task count, by metric
// math), with the target the backlog a task clears within the accepted
// latency; scale-in waits for a removed task's drain, and ECS gives the
// drain its whole time before SIGKILL.
func TestTerraformAutoscaling(t *testing.T) {
	x := parseTerraform(t)
	for _, b := range x.blocks {
		if b.Type != "resource" {
			continue
		}
		text := x.src(b.Range())
		if b.Labels[0] == "aws_appautoscaling_policy" && strings.Contains(text, "StepScaling") {
			t.Errorf("%s.%s is step scaling", b.Labels[0], b.Labels[1])
		}
		if b.Labels[0] == "aws_cloudwatch_metric_alarm" && strings.Contains(text, "aws_appautoscaling_policy.") {
			t.Errorf("alarm %s drives a scaling policy: target tracking makes its own alarms", b.Labels[1])
		}
	}
	p := x.block("resource", "aws_appautoscaling_policy", "backlog_per_task")
	if p == nil {
		t.Fatal("no aws_appautoscaling_policy.backlog_per_task")
	}
	if v, _ := attrExpr(p, "policy_type").Value(nil); v.AsString() != "TargetTrackingScaling" {
		t.Errorf("policy_type %s", v.AsString())
	}

	// The metric: backlog / tasks, from SQS's visible messages and ECS's
	// task count of this service.
	var spec *hclsyntax.Block
	for _, b := range p.Body.Blocks {
		for _, c := range b.Body.Blocks {
			if b.Type == "target_tracking_scaling_policy_configuration" && c.Type == "customized_metric_specification" {
				spec = c
			}
		}
	}
	if spec == nil {
		t.Fatal("no customized_metric_specification")
	}
	metricOf := map[string]string{} // id → namespace/metric_name
	var returned string
	for _, m := range spec.Body.Blocks {
		if m.Type != "metrics" {
			continue
		}
		id, _ := attrExpr(m, "id").Value(nil)
		if ex := attrExpr(m, "metric_stat", "metric", "metric_name"); ex != nil {
			ns, _ := attrExpr(m, "metric_stat", "metric", "namespace").Value(nil)
			name, _ := ex.Value(nil)
			metricOf[id.AsString()] = ns.AsString() + "/" + name.AsString()
			dims := x.src(m.Range())
			switch ns.AsString() {
			case "AWS/SQS":
				if !strings.Contains(dims, "aws_sqs_queue.main.name") {
					t.Errorf("metric %s is not of the main queue", id.AsString())
				}
			case "ECS/ContainerInsights":
				if !strings.Contains(dims, "aws_ecs_service.serve.name") || !strings.Contains(dims, "local.cluster_name") {
					t.Errorf("metric %s is not of the serve service", id.AsString())
				}
			}
		}
		if r := attrExpr(m, "return_data"); r != nil {
			if v, _ := r.Value(nil); v.True() {
				ex, _ := attrExpr(m, "expression").Value(nil)
				returned = ex.AsString()
			}
		}
	}
	num, den, ok := strings.Cut(returned, "/")
	if !ok {
		t.Fatalf("the returned metric %q is not a ratio", returned)
	}
	if got := metricOf[strings.TrimSpace(num)]; got != "AWS/SQS/ApproximateNumberOfMessagesVisible" {
		t.Errorf("backlog per task divides %s, want AWS/SQS ApproximateNumberOfMessagesVisible", got)
	}
	if got := metricOf[strings.TrimSpace(den)]; got != "ECS/ContainerInsights/DesiredTaskCount" && got != "ECS/ContainerInsights/RunningTaskCount" {
		t.Errorf("backlog per task divides by %s, want the service's task count", got)
	}

	// The target: what one task clears within the accepted latency.
	for _, c := range []struct{ rate, latency, want int64 }{{1000, 300, 300000}, {250, 120, 30000}} {
		e := x.eval(t, map[string]cty.Value{"task_events_per_second": cty.NumberIntVal(c.rate), "acceptable_latency_seconds": cty.NumberIntVal(c.latency)})
		if got := num64(e.value(t, attrExpr(p, "target_tracking_scaling_policy_configuration", "target_value"))); got != c.want {
			t.Errorf("%d events/s, %d s: target %d, want %d", c.rate, c.latency, got, c.want)
		}
	}

	// Scale-in lets a task drain: the cooldown is at least the stop
	// timeout, which is at least the drain plus a margin.
	for _, drain := range []int64{1, 25, 60, 105} {
		for _, cooldown := range []int64{0, 60, 300} {
			e := x.eval(t, map[string]cty.Value{"drain_timeout_seconds": cty.NumberIntVal(drain), "scale_in_cooldown_seconds": cty.NumberIntVal(cooldown)})
			stop := num64(e.local(t, "stop_timeout"))
			in := num64(e.value(t, attrExpr(p, "target_tracking_scaling_policy_configuration", "scale_in_cooldown")))
			if stop < drain+10 || stop > 120 {
				t.Errorf("drain %d s: stopTimeout %d s, want drain + at least 10 s, at most 120", drain, stop)
			}
			if in < stop || in < cooldown {
				t.Errorf("drain %d s, scale_in_cooldown_seconds %d: scale-in cooldown %d s, below stopTimeout %d s or the setting", drain, cooldown, in, stop)
			}
		}
	}
	if attrExpr(p, "target_tracking_scaling_policy_configuration", "disable_scale_in") != nil {
		t.Error("scale-in is disabled")
	}
}

func num64(v cty.Value) int64 {
	f := v.AsBigFloat()
	i, acc := f.Int64()
	if acc != big.Exact {
		return -1
	}
	return i
}

// Issue 13, item 6: the provider range admits only versions that take
// max_message_size = 1048576 (6.8.0 and later), and nothing deprecated in
// it is used.
func TestTerraformProviderRange(t *testing.T) {
	x := parseTerraform(t)
	var constraint string
	for _, b := range x.blocks {
		if b.Type != "terraform" {
			continue
		}
		for _, rp := range b.Body.Blocks {
			if rp.Type != "required_providers" {
				continue
			}
			v, diags := rp.Body.Attributes["aws"].Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			constraint = v.GetAttr("version").AsString()
		}
	}
	if constraint == "" {
		t.Fatal("no version constraint for hashicorp/aws")
	}
	for v, want := range map[string]bool{"5.40.0": false, "5.100.0": false, "6.0.0": false, "6.7.0": false, "6.8.0": true, "6.20.0": true, "7.0.0": false} {
		if got := admits(t, constraint, v); got != want {
			t.Errorf("provider constraint %q admits %s: %v, want %v", constraint, v, got, want)
		}
	}
	for path, f := range x.files {
		// data.aws_region's name is deprecated in 6.x: region replaces it.
		if strings.Contains(string(f.Bytes), "data.aws_region.current.name") {
			t.Errorf("%s uses data.aws_region.current.name, deprecated in provider 6", path)
		}
	}
	if q := x.block("resource", "aws_sqs_queue", "main"); q != nil {
		if v, _ := q.Body.Attributes["max_message_size"].Expr.Value(nil); num64(v) != 1048576 {
			t.Errorf("max_message_size %s", v.GoString())
		}
	}
}

// admits evaluates a Terraform version constraint (comma-separated
// >=, >, <=, <, =, != and ~> clauses) for version v.
func admits(t *testing.T, constraint, v string) bool {
	t.Helper()
	parse := func(s string) [3]int {
		var out [3]int
		for i, p := range strings.SplitN(strings.TrimSpace(s), ".", 3) {
			n, err := strconv.Atoi(p)
			if err != nil {
				t.Fatalf("version %q", s)
			}
			out[i] = n
		}
		return out
	}
	cmp := func(a, b [3]int) int { return slices.Compare(a[:], b[:]) }
	ver := parse(v)
	re := regexp.MustCompile(`^\s*(>=|<=|!=|~>|>|<|=)?\s*([0-9.]+)\s*$`)
	for _, clause := range strings.Split(constraint, ",") {
		m := re.FindStringSubmatch(clause)
		if m == nil {
			t.Fatalf("constraint clause %q", clause)
		}
		c := cmp(ver, parse(m[2]))
		ok := map[string]bool{">=": c >= 0, "<=": c <= 0, "!=": c != 0, ">": c > 0, "<": c < 0, "=": c == 0, "": c == 0}[m[1]]
		if m[1] == "~>" {
			parts := strings.Split(m[2], ".")
			upper := parse(m[2])
			if len(parts) == 3 {
				upper = [3]int{upper[0], upper[1] + 1, 0}
			} else {
				upper = [3]int{upper[0] + 1, 0, 0}
			}
			ok = c >= 0 && cmp(ver, upper) < 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// Issue 13, item 6: secrets come from Secrets Manager or SSM Parameter
// Store, by ARN; the execution role reads exactly those (a Secrets Manager
// JSON key stripped to its secret), and decrypts with customer-managed keys
// only through those two services.
func TestTerraformSecretsSources(t *testing.T) {
	x := parseTerraform(t)
	const (
		sm    = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wharf/dsn-AbCdEf"
		smKey = sm + ":dsn::"
		ssm   = "arn:aws:ssm:eu-west-1:123456789012:parameter/wharf/mongo-uri"
	)
	for _, c := range []struct {
		dsn, mongo string
		wantSM     []string
		wantSSM    []string
	}{
		{sm, "", []string{sm}, nil},
		{smKey, ssm, []string{sm}, []string{ssm}},
		{ssm, sm, []string{sm}, []string{ssm}},
	} {
		e := x.eval(t, map[string]cty.Value{"warehouse_dsn_secret_arn": cty.StringVal(c.dsn), "mongo_uri_secret_arn": cty.StringVal(c.mongo)})
		if !e.valid(t, "warehouse_dsn_secret_arn") || !e.valid(t, "mongo_uri_secret_arn") {
			t.Errorf("%s, %s: refused", c.dsn, c.mongo)
		}
		if got := strs(e.local(t, "secretsmanager_secret_arns")); !slices.Equal(got, c.wantSM) {
			t.Errorf("%s, %s: Secrets Manager resources %v, want %v", c.dsn, c.mongo, got, c.wantSM)
		}
		if got := strs(e.local(t, "ssm_parameter_arns")); !slices.Equal(got, c.wantSSM) {
			t.Errorf("%s, %s: SSM resources %v, want %v", c.dsn, c.mongo, got, c.wantSSM)
		}
	}
	// The replay key, when set, is read like the others.
	replayKey := "arn:aws:ssm:eu-west-1:123456789012:parameter/wharf/replay-key"
	e := x.eval(t, map[string]cty.Value{"warehouse_dsn_secret_arn": cty.StringVal(sm), "replay_key_secret_arn": cty.StringVal(replayKey)})
	if !e.valid(t, "replay_key_secret_arn") {
		t.Errorf("replay_key_secret_arn %s refused", replayKey)
	}
	if got := strs(e.local(t, "ssm_parameter_arns")); !slices.Equal(got, []string{replayKey}) {
		t.Errorf("SSM resources with a replay key = %v, want %v", got, []string{replayKey})
	}
	passed := false
	for _, b := range x.blocks {
		if a, ok := b.Body.Attributes["secrets"]; ok && b.Type == "locals" {
			passed = strings.Contains(x.src(a.Expr.Range()), `"WHARF_DEADLETTER_REPLAY_KEY", valueFrom = var.replay_key_secret_arn`)
		}
	}
	if !passed {
		t.Error("the task's secrets do not pass the replay key (WHARF_DEADLETTER_REPLAY_KEY)")
	}
	for _, bad := range []string{"wharf/dsn", "arn:aws:s3:::bucket/dsn", "arn:aws:ssm:eu-west-1:123456789012:document/x"} {
		if x.eval(t, map[string]cty.Value{"warehouse_dsn_secret_arn": cty.StringVal(bad)}).valid(t, "warehouse_dsn_secret_arn") {
			t.Errorf("warehouse_dsn_secret_arn %q accepted", bad)
		}
	}

	// The execution role's statements: each action on its own resources.
	b := x.block("data", "aws_iam_policy_document", "execution_secrets")
	if b == nil {
		t.Fatal("no data.aws_iam_policy_document.execution_secrets")
	}
	want := map[string]string{
		"secretsmanager:GetSecretValue": "local.secretsmanager_secret_arns",
		"ssm:GetParameters":             "local.ssm_parameter_arns",
		"kms:Decrypt":                   "var.secrets_kms_key_arns",
	}
	for _, d := range b.Body.Blocks {
		if d.Type != "dynamic" || d.Labels[0] != "statement" {
			continue
		}
		for _, c := range d.Body.Blocks {
			if c.Type != "content" {
				continue
			}
			actions, _ := c.Body.Attributes["actions"].Expr.Value(nil)
			for _, a := range strs(actions) {
				res, ok := want[a]
				if !ok {
					t.Errorf("the execution role grants %s", a)
					continue
				}
				if got := x.src(c.Body.Attributes["resources"].Expr.Range()); got != res {
					t.Errorf("%s on %s, want %s", a, got, res)
				}
				if a == "kms:Decrypt" {
					cond := x.src(c.Range())
					if !strings.Contains(cond, `"kms:ViaService"`) || !strings.Contains(cond, `"secretsmanager.${local.region}.amazonaws.com"`) || !strings.Contains(cond, `"ssm.${local.region}.amazonaws.com"`) {
						t.Error("kms:Decrypt for secrets is not limited to Secrets Manager and SSM (kms:ViaService)")
					}
				}
				delete(want, a)
			}
		}
	}
	for a := range want {
		t.Errorf("the execution role does not grant %s", a)
	}
}

func strs(v cty.Value) []string {
	var out []string
	if v.IsNull() {
		return nil
	}
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e.AsString())
	}
	return out
}

// Issue 13, item 6: the warehouse dialect has no default (as in wharf);
// the example sets every variable that has none; the pool size is a
// setting the tasks get; outputs name the queue, the DLQ and the bucket.
func TestTerraformSettingsAndOutputs(t *testing.T) {
	x := parseTerraform(t)
	if b := x.block("variable", "warehouse_dialect"); b == nil || b.Body.Attributes["default"] != nil {
		t.Error("variable warehouse_dialect has a default")
	}
	e := x.eval(t, map[string]cty.Value{"warehouse_dialect": cty.StringVal("oracle")})
	if e.valid(t, "warehouse_dialect") {
		t.Error("warehouse_dialect accepts oracle")
	}

	// example.tfvars: every required variable, only declared ones.
	var ex *hcl.File
	for path, f := range x.files {
		if strings.HasSuffix(path, "example.tfvars") {
			ex = f
		}
	}
	if ex == nil {
		t.Fatal("no example.tfvars")
	}
	set := ex.Body.(*hclsyntax.Body).Attributes
	for _, b := range x.blocks {
		if b.Type == "variable" && b.Body.Attributes["default"] == nil && set[b.Labels[0]] == nil {
			t.Errorf("example.tfvars does not set %s, which has no default", b.Labels[0])
		}
	}
	for name := range set {
		if x.block("variable", name) == nil {
			t.Errorf("example.tfvars sets %s, which is not declared", name)
		}
	}

	for _, name := range []string{"backfill_environment", "serve_environment"} {
		env := x.eval(t, map[string]cty.Value{"warehouse_max_connections": cty.NumberIntVal(20)}).local(t, name)
		if v, ok := envValue(t, env, "WHARF_WAREHOUSE_MAX_CONNECTIONS"); !ok || v.AsString() != "20" {
			t.Errorf("%s: WHARF_WAREHOUSE_MAX_CONNECTIONS %#v, want 20 from warehouse_max_connections", name, v)
		}
	}

	for name, want := range map[string]string{
		"queue_arn": "aws_sqs_queue.main.arn", "dlq_arn": "aws_sqs_queue.dlq.arn",
		"bucket": "aws_s3_bucket.data.bucket", "bucket_arn": "aws_s3_bucket.data.arn",
	} {
		b := x.block("output", name)
		if b == nil {
			t.Errorf("no output %s", name)
			continue
		}
		if got := x.src(b.Body.Attributes["value"].Expr.Range()); got != want {
			t.Errorf("output %s = %s, want %s", name, got, want)
		}
	}

	// The ECR repository is optional, off by default.
	if r := x.block("resource", "aws_ecr_repository", "wharf"); r == nil {
		t.Error("no aws_ecr_repository.wharf")
	} else if got := x.src(r.Body.Attributes["count"].Expr.Range()); got != "var.create_ecr_repository ? 1 : 0" {
		t.Errorf("aws_ecr_repository.wharf count = %s", got)
	}
	if v := x.eval(t, nil).vars["create_ecr_repository"]; v.IsNull() || v.True() {
		t.Error("create_ecr_repository is not false by default")
	}
}

// Terraform state, plans and real tfvars never reach git; the example does.
func TestGitignoreTerraform(t *testing.T) {
	// make test runs in a clone, with git: there this test must run.
	git, err := exec.LookPath("git")
	root := stacktest.RepoRoot()
	if err == nil {
		_, err = os.Stat(filepath.Join(root, ".git"))
	}
	if err != nil {
		if os.Getenv("WHARF_REQUIRE_STACK") == "1" {
			t.Fatalf("git or the work tree is missing (make test runs in a clone): %v", err)
		}
		t.Skip("no git work tree")
	}
	check := func(path string) bool {
		c := exec.Command(git, "check-ignore", "-q", "--no-index", path)
		c.Dir = root
		return c.Run() == nil
	}
	for _, p := range []string{
		"deploy/terraform/terraform.tfstate", "deploy/terraform/terraform.tfstate.backup",
		"deploy/terraform/.terraform/providers/x", "deploy/terraform/prod.tfvars",
		"deploy/terraform/prod.auto.tfvars", "deploy/terraform/plan.tfplan", "deploy/terraform/crash.log",
	} {
		if !check(p) {
			t.Errorf("%s is not ignored", p)
		}
	}
	for _, p := range []string{"deploy/terraform/example.tfvars", "deploy/terraform/.terraform.lock.hcl", "deploy/terraform/sqs.tf"} {
		if check(p) {
			t.Errorf("%s is ignored", p)
		}
	}
}

// Issue 13, item 9: every log metric filter matches a message the Go code
// logs, word for word (a reworded log line would silence its alarm), and
// the alarms for crash loops, raw writes, flushes and memory exist.
func TestTerraformLogFiltersMatchCode(t *testing.T) {
	x := parseTerraform(t)
	root := stacktest.RepoRoot()
	var code strings.Builder
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "node_modules" || d.Name() == "deploy" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, _ := os.ReadFile(path)
			code.Write(b)
		}
		return nil
	})
	logged := regexp.MustCompile(`\.(Debug|Info|Warn|Error)\("((?:[^"\\]|\\.)*)"`)
	msgs := map[string]bool{}
	for _, m := range logged.FindAllStringSubmatch(code.String(), -1) {
		msgs[m[2]] = true
	}
	inPattern := regexp.MustCompile(`\$\.msg = "((?:[^"\\]|\\.)*)"`)
	filters := 0
	for _, b := range x.blocks {
		if b.Type != "resource" || b.Labels[0] != "aws_cloudwatch_log_metric_filter" {
			continue
		}
		filters++
		v, diags := b.Body.Attributes["pattern"].Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		ms := inPattern.FindAllStringSubmatch(v.AsString(), -1)
		if len(ms) == 0 {
			t.Errorf("metric filter %s matches no msg: %s", b.Labels[1], v.AsString())
		}
		for _, m := range ms {
			if !msgs[m[1]] {
				t.Errorf("metric filter %s matches msg %q, which no Go code logs", b.Labels[1], m[1])
			}
		}
	}
	if filters < 6 {
		t.Errorf("%d log metric filters, want at least 6 (loaded, dead letters, load and flush failures, quarantine, raw writes)", filters)
	}
	// The new alarms' sources.
	for name, want := range map[string][]string{
		"tasks_not_running": {`"RunningTaskCount"`, `"DesiredTaskCount"`, "aws_ecs_service.serve.name"},
		"memory":            {`"AWS/ECS"`, `"MemoryUtilization"`, "aws_ecs_service.serve.name"},
		"raw_write_errors":  {`"RawWriteErrors"`},
		"flush_failures":    {`"FlushFailures"`},
	} {
		b := x.block("resource", "aws_cloudwatch_metric_alarm", name)
		if b == nil {
			t.Errorf("no alarm %s", name)
			continue
		}
		text := x.src(b.Range())
		for _, w := range append(want, "local.alarm_topic", "docs/operations.md#alarm-") {
			if !strings.Contains(text, w) {
				t.Errorf("alarm %s lacks %s", name, w)
			}
		}
	}
	// Each alarm's runbook anchor exists.
	ops, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range x.blocks {
		if b.Type == "resource" && b.Labels[0] == "aws_cloudwatch_metric_alarm" {
			for _, m := range regexp.MustCompile(`docs/operations\.md#(alarm-[a-z-]+)`).FindAllStringSubmatch(x.src(b.Range()), -1) {
				if !strings.Contains(string(ops), `<a id="`+m[1]+`"></a>`) {
					t.Errorf("alarm %s links docs/operations.md#%s, which has no such anchor", b.Labels[1], m[1])
				}
			}
		}
	}
}
