//! What a hook template may cost, worked out from its syntax tree before it is compiled or run.
//!
//! The instruction budget ([`super::template::MAX_FUEL`]) counts operations, not what they
//! allocate: one `*` can repeat a string a hundred million times, and minijinja folds constant
//! expressions while it compiles, before any budget applies. So every template is parsed first
//! (parsing allocates in proportion to the source only) and each expression is given an upper
//! bound on the bytes of the value it produces, from the sizes of the variables it will really
//! render with. A template is refused when
//! - it repeats a value (`*`) whose count is not a literal, or whose result could exceed
//!   [`MAX_FIELD_BYTES`];
//! - the values it could build, each counted once per iteration of the loops around it, add up
//!   to more than [`MAX_WORK_BYTES`] for the whole request;
//! - it uses a recursive loop or a statement other than `if` and `for`.
//!
//! The bound is conservative (a branch not taken still counts), so what passes here allocates
//! at most [`MAX_WORK_BYTES`] while rendering, whatever the branches do.

use minijinja::machinery::ast::{self, BinOpKind, CallArg, Expr, Stmt, UnaryOpKind};
use minijinja::machinery::{WhitespaceConfig, parse};
use minijinja::syntax::SyntaxConfig;
use serde_json::Value;

use super::template::MAX_FIELD_BYTES;

/// The most bytes of values one request's templates may build, all fields together.
pub const MAX_WORK_BYTES: usize = 16 * 1024 * 1024;

/// What is known of a value before it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A number, a boolean or none: never repeated by `*`.
    Number,
    /// A string.
    Text,
    /// A list, a map, or not known.
    Other,
}

/// An upper bound on a value's size in bytes, with its kind.
#[derive(Debug, Clone, Copy)]
struct Size {
    bytes: usize,
    kind: Kind,
}

impl Size {
    const NUMBER: Self = Self {
        bytes: 48,
        kind: Kind::Number,
    };

    fn text(bytes: usize) -> Self {
        Self {
            bytes,
            kind: Kind::Text,
        }
    }

    fn other(bytes: usize) -> Self {
        Self {
            bytes,
            kind: Kind::Other,
        }
    }

    /// The larger of two values that may stand in one place.
    fn either(self, other: Self) -> Self {
        Self {
            bytes: self.bytes.max(other.bytes),
            kind: if self.kind == other.kind {
                self.kind
            } else {
                Kind::Other
            },
        }
    }
}

/// The size of a variable's value as the template sees it.
fn json_size(value: &Value) -> Size {
    match value {
        Value::String(s) => Size::text(s.len()),
        Value::Number(_) | Value::Bool(_) | Value::Null => Size::NUMBER,
        // minijinja's own rendering of a list or map adds a space after each separator.
        other => Size::other(
            serde_json::to_string(other)
                .map_or(usize::MAX, |s| s.len())
                .saturating_mul(2)
                .saturating_add(2),
        ),
    }
}

/// Walks one template.
struct Walk<'a> {
    variables: &'a Value,
    /// Loop variables in scope, innermost last.
    locals: Vec<(String, Size)>,
    /// Bytes of values built so far, loops counted.
    work: usize,
    /// How many times the current node may run (the product of the enclosing loops' lengths).
    times: usize,
}

/// A refusal's reason (the caller adds the field).
type Refusal = String;

impl<'a> Walk<'a> {
    fn count(&mut self, size: Size) -> Result<Size, Refusal> {
        self.work = self
            .work
            .saturating_add(size.bytes.saturating_mul(self.times));
        if self.work > MAX_WORK_BYTES {
            return Err(format!(
                "could build more than {MAX_WORK_BYTES} bytes of values while rendering (a loop \
                 over a long value, or long values joined inside a loop?)"
            ));
        }
        Ok(size)
    }

    fn local(&self, name: &str) -> Option<Size> {
        self.locals
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
    }

    /// The variables' own value an expression names, if it is a plain path into them.
    fn path_value(&self, expr: &Expr<'_>) -> Option<&'a Value> {
        match expr {
            Expr::Var(var) if self.local(var.id).is_none() => self.variables.get(var.id),
            Expr::GetAttr(get) => self.path_value(&get.expr)?.get(get.name),
            Expr::GetItem(get) => {
                let parent = self.path_value(&get.expr)?;
                match &get.subscript_expr {
                    Expr::Const(c) => match (c.value.as_str(), c.value.as_usize()) {
                        (Some(key), _) => parent.get(key),
                        (None, Some(index)) => parent.get(index),
                        _ => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn args(&mut self, args: &[CallArg<'_>]) -> Result<Vec<Size>, Refusal> {
        args.iter()
            .map(|arg| match arg {
                CallArg::Pos(e)
                | CallArg::Kwarg(_, e)
                | CallArg::PosSplat(e)
                | CallArg::KwargSplat(e) => self.expr(e),
            })
            .collect()
    }

    fn expr(&mut self, expr: &Expr<'_>) -> Result<Size, Refusal> {
        if let Some(value) = self.path_value(expr) {
            return Ok(json_size(value));
        }
        match expr {
            Expr::Var(var) => Ok(self.local(var.id).unwrap_or(Size::NUMBER)),
            Expr::Const(c) => Ok(match c.value.as_str() {
                Some(s) => Size::text(s.len()),
                None if c.value.is_number() || c.value.is_none() => Size::NUMBER,
                None => Size::other(c.value.to_string().len()),
            }),
            Expr::GetAttr(get) => {
                if let (Expr::Var(var), Some(item)) = (&get.expr, self.local("loop"))
                    && var.id == "loop"
                {
                    return Ok(match get.name {
                        "previtem" | "nextitem" => item,
                        _ => Size::NUMBER,
                    });
                }
                let parent = self.expr(&get.expr)?;
                Ok(Size::other(parent.bytes))
            }
            Expr::GetItem(get) => {
                let parent = self.expr(&get.expr)?;
                self.expr(&get.subscript_expr)?;
                Ok(Size::other(parent.bytes))
            }
            Expr::Slice(slice) => {
                let value = self.expr(&slice.expr)?;
                for part in [&slice.start, &slice.stop, &slice.step]
                    .into_iter()
                    .flatten()
                {
                    self.expr(part)?;
                }
                self.count(value)
            }
            Expr::UnaryOp(op) => {
                let value = self.expr(&op.expr)?;
                Ok(match op.op {
                    UnaryOpKind::Not => Size::NUMBER,
                    UnaryOpKind::Neg => value,
                })
            }
            Expr::BinOp(op) => self.binop(op),
            Expr::Compare(compare) => {
                self.expr(&compare.expr)?;
                for op in &compare.ops {
                    self.expr(&op.expr)?;
                }
                Ok(Size::NUMBER)
            }
            Expr::IfExpr(ife) => {
                self.expr(&ife.test_expr)?;
                let yes = self.expr(&ife.true_expr)?;
                let no = match &ife.false_expr {
                    Some(e) => self.expr(e)?,
                    None => Size::NUMBER,
                };
                Ok(yes.either(no))
            }
            Expr::Filter(filter) => {
                let input = match &filter.expr {
                    Some(e) => self.expr(e)?,
                    None => Size::text(0),
                };
                let args = self.args(&filter.args)?;
                let size = filtered(filter.name, input, &args);
                self.count(size)
            }
            Expr::Test(test) => {
                self.expr(&test.expr)?;
                self.args(&test.args)?;
                Ok(Size::NUMBER)
            }
            Expr::Call(call) => {
                let callee = self.expr(&call.expr)?;
                let args = self.args(&call.args)?;
                let bytes = args
                    .iter()
                    .fold(callee.bytes, |sum, a| sum.saturating_add(a.bytes));
                self.count(Size::other(bytes))
            }
            Expr::List(list) => {
                let mut bytes = 2usize;
                for item in &list.items {
                    bytes = bytes
                        .saturating_add(self.expr(item)?.bytes)
                        .saturating_add(2);
                }
                self.count(Size::other(bytes))
            }
            Expr::Map(map) => {
                let mut bytes = 2usize;
                for item in map.keys.iter().chain(&map.values) {
                    bytes = bytes
                        .saturating_add(self.expr(item)?.bytes)
                        .saturating_add(2);
                }
                self.count(Size::other(bytes))
            }
        }
    }

    fn binop(&mut self, op: &ast::BinOp<'_>) -> Result<Size, Refusal> {
        let left = self.expr(&op.left)?;
        let right = self.expr(&op.right)?;
        match op.op {
            BinOpKind::Eq
            | BinOpKind::Ne
            | BinOpKind::Lt
            | BinOpKind::Lte
            | BinOpKind::Gt
            | BinOpKind::Gte
            | BinOpKind::In => Ok(Size::NUMBER),
            // `a or b` is one of its operands.
            BinOpKind::ScAnd | BinOpKind::ScOr => Ok(left.either(right)),
            BinOpKind::Sub
            | BinOpKind::Div
            | BinOpKind::FloorDiv
            | BinOpKind::Rem
            | BinOpKind::Pow => Ok(Size::NUMBER),
            BinOpKind::Add if left.kind == Kind::Number && right.kind == Kind::Number => {
                Ok(Size::NUMBER)
            }
            BinOpKind::Add | BinOpKind::Concat => {
                let bytes = left.bytes.saturating_add(right.bytes);
                let kind = if matches!(op.op, BinOpKind::Concat)
                    || (left.kind == Kind::Text && right.kind == Kind::Text)
                {
                    Kind::Text
                } else {
                    Kind::Other
                };
                self.count(Size { bytes, kind })
            }
            BinOpKind::Mul if left.kind == Kind::Number && right.kind == Kind::Number => {
                Ok(Size::NUMBER)
            }
            BinOpKind::Mul => {
                let count =
                    [(&op.left, right), (&op.right, left)]
                        .into_iter()
                        .find_map(|(side, other)| match side {
                            Expr::Const(c) if other.kind != Kind::Number => {
                                c.value.as_usize().map(|n| (n, other))
                            }
                            _ => None,
                        });
                let Some((n, value)) = count else {
                    return Err(
                        "repeats a value with `*` by a count that is not a literal number: \
                         hook templates may repeat a string or list only a literal number of \
                         times"
                            .to_owned(),
                    );
                };
                let bytes = value.bytes.saturating_mul(n);
                if bytes > MAX_FIELD_BYTES {
                    return Err(format!(
                        "repeats a value with `*` to more than {MAX_FIELD_BYTES} bytes"
                    ));
                }
                self.count(Size {
                    bytes,
                    kind: value.kind,
                })
            }
        }
    }

    fn body(&mut self, stmts: &[Stmt<'_>]) -> Result<(), Refusal> {
        for stmt in stmts {
            self.stmt(stmt)?;
        }
        Ok(())
    }

    fn stmt(&mut self, stmt: &Stmt<'_>) -> Result<(), Refusal> {
        match stmt {
            Stmt::Template(t) => self.body(&t.children),
            Stmt::EmitRaw(_) => Ok(()),
            Stmt::EmitExpr(emit) => {
                let size = self.expr(&emit.expr)?;
                self.count(size).map(drop)
            }
            Stmt::IfCond(cond) => {
                self.expr(&cond.expr)?;
                self.body(&cond.true_body)?;
                self.body(&cond.false_body)
            }
            Stmt::ForLoop(for_loop) => self.for_loop(for_loop),
            _ => Err("uses a statement other than if and for, which hook templates may not".into()),
        }
    }

    fn for_loop(&mut self, for_loop: &ast::ForLoop<'_>) -> Result<(), Refusal> {
        if for_loop.recursive {
            return Err("uses a recursive loop, which hook templates may not".to_owned());
        }
        let iter = self.expr(&for_loop.iter)?;
        // A string yields at most a character per byte; a list or map at most an item per byte
        // of its rendering.
        let (length, item) = match iter.kind {
            Kind::Text => (iter.bytes, Size::text(4)),
            Kind::Number => (0, Size::NUMBER),
            Kind::Other => (iter.bytes, Size::other(iter.bytes)),
        };
        let outer = self.times;
        let scope = self.locals.len();
        self.bind(&for_loop.target, item);
        self.locals.push(("loop".to_owned(), item));
        self.times = outer.saturating_mul(length.max(1));
        let result = (|| {
            if let Some(filter) = &for_loop.filter_expr {
                self.expr(filter)?;
            }
            self.body(&for_loop.body)
        })();
        self.times = outer;
        self.locals.truncate(scope);
        result?;
        self.body(&for_loop.else_body)
    }

    fn bind(&mut self, target: &Expr<'_>, size: Size) {
        match target {
            Expr::Var(var) => self.locals.push((var.id.to_owned(), size)),
            Expr::List(list) => {
                for item in &list.items {
                    self.bind(item, size);
                }
            }
            _ => {}
        }
    }
}

/// A filter's output, from its input and arguments (the filters `template::environment` adds).
fn filtered(name: &str, input: Size, args: &[Size]) -> Size {
    match name {
        // Case mapping can triple a character's bytes (e.g. `ΐ` upper-cased).
        "lower" | "upper" | "capitalize" | "title" => Size::text(input.bytes.saturating_mul(3)),
        "trim" => Size::text(input.bytes),
        "first" | "last" => match input.kind {
            Kind::Text => Size::text(4),
            _ => Size::other(input.bytes),
        },
        "length" | "int" => Size::NUMBER,
        "default" | "d" => args.iter().fold(input, |size, arg| size.either(*arg)),
        "string" => Size::text(input.bytes),
        // `bounded_replace` refuses to grow a value past the field limit.
        "replace" => Size::text(input.bytes.max(MAX_FIELD_BYTES)),
        // Unknown filters fail when the template runs; count their inputs.
        _ => Size::other(
            args.iter()
                .fold(input.bytes, |sum, a| sum.saturating_add(a.bytes)),
        ),
    }
}

/// Checks one template against what it may cost with these variables, given what the
/// request's other fields have built already. Returns the bytes of values it could build.
pub fn check(source: &str, variables: &Value, spent: usize) -> Result<usize, String> {
    // A unit struct unless minijinja's `custom_syntax` is on.
    #[allow(clippy::default_constructed_unit_structs)]
    let tree = parse(
        source,
        "<hook>",
        SyntaxConfig::default(),
        WhitespaceConfig::default(),
    )
    .map_err(|e| format!("is not a valid template: {e}"))?;
    let mut walk = Walk {
        variables,
        locals: Vec::new(),
        work: spent,
        times: 1,
    };
    walk.stmt(&tree)?;
    Ok(walk.work.saturating_sub(spent))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn vars() -> Value {
        json!({"hook": {"name": "n".repeat(100)}, "deployment": {"commit_message": "m".repeat(1000), "status": "success"}})
    }

    #[test]
    fn repeating_a_string_needs_a_literal_count_within_the_field_limit() {
        let error = check("{{ 'x' * 100000000 }}", &vars(), 0).unwrap_err();
        assert!(error.contains(&MAX_FIELD_BYTES.to_string()), "{error}");
        let error = check("{{ hook.name * 1000000 }}", &vars(), 0).unwrap_err();
        assert!(error.contains(&MAX_FIELD_BYTES.to_string()), "{error}");
        let error = check("{{ hook.name * deployment.status|length }}", &vars(), 0).unwrap_err();
        assert!(error.contains("not a literal"), "{error}");
        // Nested repetition multiplies.
        assert!(check("{{ ('x' * 1000) * 1000 }}", &vars(), 0).is_err());
        // A short separator and arithmetic are fine.
        assert!(
            check(
                "{{ '=' * 20 }}{{ 3 * 4 }}{{ deployment.status|length * 2 }}",
                &vars(),
                0
            )
            .is_ok()
        );
    }

    #[test]
    fn values_built_inside_loops_are_counted_per_iteration() {
        let concat = format!(
            "{{% for c in deployment.commit_message %}}{{{{ ({}) | length }}}}{{% endfor %}}",
            vec!["deployment.commit_message"; 20].join(" ~ ")
        );
        // 1,000 iterations × 20 kB joined: 20 MB, over the budget.
        let error = check(&concat, &vars(), 0).unwrap_err();
        assert!(error.contains(&MAX_WORK_BYTES.to_string()), "{error}");
        // The same with a short message fits.
        let short = json!({"deployment": {"commit_message": "fix"}});
        assert!(check(&concat, &short, 0).is_ok());
        // What earlier fields spent counts.
        let one = check("{{ deployment.commit_message ~ 'x' }}", &vars(), 0).unwrap();
        assert!(one > 1000);
        assert!(
            check(
                "{{ deployment.commit_message ~ 'x' }}",
                &vars(),
                MAX_WORK_BYTES - 10
            )
            .is_err()
        );
    }

    #[test]
    fn statements_other_than_if_and_for_are_refused() {
        assert!(check("{% set x = 1 %}", &vars(), 0).is_err());
        assert!(
            check(
                "{% for x in [1] recursive %}{{ loop(x) }}{% endfor %}",
                &vars(),
                0
            )
            .is_err()
        );
        assert!(
            check(
                "{% for x in deployment.status %}{{ loop.index * 2 }}{{ x }}{% endfor %}{% if hook.name %}y{% endif %}",
                &vars(),
                0
            )
            .is_ok()
        );
    }
}
