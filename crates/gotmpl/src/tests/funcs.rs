//! Function corpus (builtins, Docker functions, header mode); expectations from Go 1.19 via `oracle/regen.py`.

use super::{PLUGIN, check, check_header, finish};

#[test]
#[rustfmt::skip]
#[allow(clippy::too_many_lines)]
fn corpus() {
    // BEGIN CORPUS funcs
    check("{{len .S}} {{len .A}} {{len .O}}", r#"{"S":"héllo","A":[1,2],"O":{"a":1}}"#,
        "6 2 1");
    check("{{len .N}}", r#"{"N":3}"#,
        r#"ERROR: template: :1:2: executing "" at <len .N>: error calling len: len of type int"#);
    check("{{len .N}}", r#"{"N":null}"#,
        r#"ERROR: template: :1:2: executing "" at <len .N>: error calling len: len of nil pointer"#);
    check(r#"{{index .A 1}} {{index .O "b"}} {{index .M "a" 1}}"#, r#"{"A":[1,2],"O":{"b":"x"},"M":{"a":[5,6]}}"#,
        "2 x 6");
    check("{{index .A 5}}", r#"{"A":[1,2]}"#,
        r#"ERROR: template: :1:2: executing "" at <index .A 5>: error calling index: index out of range: 5"#);
    check("{{index .A 2}}", r#"{"A":[1,2]}"#,
        r#"ERROR: template: :1:2: executing "" at <index .A 2>: error calling index: reflect: slice index out of range"#);
    check("{{index .A -1}}", r#"{"A":[1,2]}"#,
        r#"ERROR: template: :1:2: executing "" at <index .A -1>: error calling index: index out of range: -1"#);
    check("{{index .S 1}}", r#"{"S":"abc"}"#,
        "98");
    // null prints <nil> (a nil field of a Docker struct), Go's map data gives <no value>
    // Deviation; Go gives: "<no value>"
    check(r#"{{index .O "zz"}}"#, r#"{"O":{"b":"x"}}"#,
        "<nil>");
    check("{{index .N 0}}", r#"{"N":3}"#,
        r#"ERROR: template: :1:2: executing "" at <index .N 0>: error calling index: can't index item of type int"#);
    check(r#"{{index .A "x"}}"#, r#"{"A":[1]}"#,
        r#"ERROR: template: :1:2: executing "" at <index .A "x">: error calling index: cannot index slice/array with type string"#);
    check("{{index .O 1}}", r#"{"O":{"b":"x"}}"#,
        r#"ERROR: template: :1:2: executing "" at <index .O 1>: error calling index: value has type int; should be string"#);
    check("{{index .A}}", r#"{"A":[1]}"#,
        "[1]");
    check("{{index .Config.Env 5}}", PLUGIN,
        r#"ERROR: template: :1:2: executing "" at <index .Config.Env 5>: error calling index: index out of range: 5"#);
    check("{{slice .S 1 3}} {{slice .S 2}} {{slice .S}} {{slice .A 1}} {{slice .A 0 1}}", r#"{"S":"abcdef","A":[1,2,3]}"#,
        "bc cdef abcdef [2 3] [1]");
    check("{{slice .A 1 5}}", r#"{"A":[1,2,3]}"#,
        r#"ERROR: template: :1:2: executing "" at <slice .A 1 5>: error calling slice: index out of range: 5"#);
    check("{{slice .A 2 1}}", r#"{"A":[1,2,3]}"#,
        r#"ERROR: template: :1:2: executing "" at <slice .A 2 1>: error calling slice: invalid slice index: 2 > 1"#);
    check("{{slice .S 1 2 3}}", r#"{"S":"abc"}"#,
        r#"ERROR: template: :1:2: executing "" at <slice .S 1 2 3>: error calling slice: cannot 3-index slice a string"#);
    check("{{slice 5 1}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <slice 5 1>: error calling slice: can't slice item of type int"#);
    check(r#"{{print 1 2 "a" "b" 3 .T nil}}"#, r#"{"T":true}"#,
        "1 2ab3 true <nil>");
    check(r#"{{println "a" 1}}"#, "{}",
        "a 1\n");
    check("{{print}}|{{println}}|", "{}",
        "|\n|");
    check(r#"{{eq 1 1}} {{eq "a" "b" "a"}} {{eq 1.5 1.5}} {{eq true false}} {{eq .A 3}}"#, r#"{"A":3}"#,
        "true true true false true");
    check(r#"{{eq 1 "a"}}"#, "{}",
        r#"ERROR: template: :1:2: executing "" at <eq 1 "a">: error calling eq: incompatible types for comparison"#);
    check("{{eq 1 1.0}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <eq 1 1.0>: error calling eq: incompatible types for comparison"#);
    check("{{eq .N 1}} {{eq .N .N}}", r#"{"N":null}"#,
        "false true");
    check("{{eq 1}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <eq 1>: error calling eq: missing argument for comparison"#);
    check("{{eq .A .A}}", r#"{"A":[1]}"#,
        r#"ERROR: template: :1:2: executing "" at <eq .A .A>: error calling eq: non-comparable type [%!s(int=1)]: []interface {}"#);
    check(r#"{{ne 1 2}} {{ne "a" "a"}}"#, "{}",
        "true false");
    check(r#"{{lt 1 2}} {{le 2 2}} {{gt 3 2}} {{ge 1 2}} {{lt "a" "b"}} {{gt 1.5 0.5}}"#, "{}",
        "true true true false true true");
    check("{{lt true false}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <lt true false>: error calling lt: invalid type for comparison"#);
    check(r#"{{lt 1 "a"}}"#, "{}",
        r#"ERROR: template: :1:2: executing "" at <lt 1 "a">: error calling lt: incompatible types for comparison"#);
    check("{{lt .N 1}}", r#"{"N":null}"#,
        r#"ERROR: template: :1:2: executing "" at <lt .N 1>: error calling lt: invalid type for comparison"#);
    check("{{if gt (len .Settings.Env) 0}}has env{{end}}", PLUGIN,
        "has env");
    check("{{json .}}", r#"{"b":true,"f":1.5,"n":1,"s":"<a&b> \"q\" \\ é   \u0001\n\t","z":null}"#,
        r#"{"b":true,"f":1.5,"n":1,"s":"<a&b> \"q\" \\ é \u2028 \u0001\n\t","z":null}"#);
    check("{{json .A}} {{json .B}} {{json .C}} {{json .D}} {{json .E}}", r#"{"A":1e+21,"B":1e-06,"C":1e-07,"D":123456789.0,"E":-0.5}"#,
        "1e+21 0.000001 1e-7 123456789 -0.5");
    check(r#"{{json "x"}} {{json 1}} {{json nil}} {{json .L}}"#, r#"{"L":[1,"a",[null]]}"#,
        r#""x" 1 null [1,"a",[null]]"#);
    check(r#"{{split "a,b,c" ","}} {{split "abc" ""}} {{len (split "" ",")}}"#, "{}",
        "[a b c] [a b c] 1");
    check(r#"{{json (split "a,b" ",")}}"#, "{}",
        r#"["a","b"]"#);
    check(r#"{{join .L "-"}} {{join (split "a b c" " ") ","}}"#, r#"{"L":["x","y"]}"#,
        "x-y a,b,c");
    // join is typed []string as in Docker
    // Deviation; Go gives: r#"ERROR: template: :1:2: executing "" at <join .L "-">: error calling join: not a list: string"#
    check(r#"{{join .L "-"}}"#, r#"{"L":"notalist"}"#,
        r#"ERROR: template: :1:7: executing "" at <.L>: wrong type for value; expected []string; got string"#);
    check(r#"{{title "hello wORLD foo-bar_baz 1st été"}}"#, "{}",
        "Hello WORLD Foo-Bar_baz 1st Été");
    check(r#"{{lower "HeLLo É"}} {{upper "hello é"}}"#, "{}",
        "hello é HELLO É");
    check(r#"[{{pad "abc" 2 3}}] [{{pad "" 2 3}}]"#, "{}",
        "[  abc   ] []");
    check(r#"{{truncate "abcdef" 3}} {{truncate "ab" 3}} {{truncate "abc" 3}} {{truncate .Name 5}}"#, PLUGIN,
        "abc ab abc vieux");
    // truncate counts chars so it never splits UTF-8
    // Deviation; Go gives: "h�"
    check(r#"{{truncate "héllo" 2}}"#, "{}",
        "hé");
    check("{{len}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <len>: wrong number of args for len: want 1 got 0"#);
    check("{{len 1 2}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <len>: wrong number of args for len: want 1 got 2"#);
    check("{{index}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <index>: wrong number of args for index: want at least 1 got 0"#);
    check("{{json}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <json>: wrong number of args for json: want 1 got 0"#);
    check(r#"{{pad "a" 1}}"#, "{}",
        r#"ERROR: template: :1:2: executing "" at <pad>: wrong number of args for pad: want 3 got 2"#);
    check("{{title 3}}", "{}",
        r#"ERROR: template: :1:8: executing "" at <3>: expected string; found 3"#);
    check("{{title .N}}", r#"{"N":3}"#,
        r#"ERROR: template: :1:8: executing "" at <.N>: wrong type for value; expected string; got int"#);
    check(r#"{{truncate .Name "x"}}"#, PLUGIN,
        r#"ERROR: template: :1:17: executing "" at <"x">: expected integer; found "x""#);
    check("{{lower nil}}", "{}",
        r#"ERROR: template: :1:8: executing "" at <nil>: cannot assign nil to string"#);
    // len of a nil literal reports like len of a nil field
    // Deviation; Go gives: r#"ERROR: template: :1:2: executing "" at <len nil>: error calling len: reflect: call of reflect.Value.Type on zero Value"#
    check("{{len nil}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <len nil>: error calling len: len of nil pointer"#);
    check(r#"{{"x" | pad 1 1}}"#, "{}",
        r#"ERROR: template: :1:12: executing "" at <1>: expected string; found 1"#);
    check(r#"{{.Name | upper}} {{.Name | truncate 5 | printf "%q"}}"#, PLUGIN,
        r#"ERROR: template: :1:37: executing "" at <5>: expected string; found 5"#);
    check(r#"{{"x" | pad "y" 1}}"#, "{}",
        r#"ERROR: template: :1:16: executing "" at <1>: wrong type for value; expected int; got string"#);
    check("{{.A | len}} {{.A | index 1}}", r#"{"A":[1,2]}"#,
        r#"ERROR: template: :1:20: executing "" at <index 1>: error calling index: can't index item of type int"#);
    check("{{printf}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <printf>: wrong number of args for printf: want at least 1 got 0"#);
    check("{{printf 3}}", "{}",
        r#"ERROR: template: :1:9: executing "" at <3>: expected string; found 3"#);
    check("{{printf .N}}", r#"{"N":3}"#,
        r#"ERROR: template: :1:9: executing "" at <.N>: wrong type for value; expected string; got int"#);
    check(r#"{{pad "a" -1 0}}"#, "{}",
        r#"ERROR: template: :1:2: executing "" at <pad "a" -1 0>: error calling pad: strings: negative Repeat count"#);
    check(r#"{{truncate "a" -1}}"#, "{}",
        r#"ERROR: template: :1:2: executing "" at <truncate "a" -1>: error calling truncate: runtime error: slice bounds out of range [:-1]"#);
    check("{{print (len .A) (index .A 0)}}", r#"{"A":["q"]}"#,
        "1q");
    check(r#"{{html "<a href='x'>&\""}} {{html 1 "a" .N}} {{"<b>" | html}}"#, r#"{"N":null}"#,
        "&lt;a href=&#39;x&#39;&gt;&amp;&#34; 1a&lt;no value&gt; &lt;b&gt;");
    check(r#"{{js "it's <b> & \"q\" \\ = \té"}} {{js 1 2}}"#, "{}",
        r#"it\'s \u003Cb\u003E \u0026 \"q\" \\ \u003D \u0009é 1 2"#);
    check(r#"{{urlquery "a b&c=d/e?f~g.h_i-jé"}} {{urlquery .L}}"#, r#"{"L":["x y",1]}"#,
        "a+b%26c%3Dd%2Fe%3Ff~g.h_i-j%C3%A9 %5Bx+y+1%5D");
    check("{{and}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <and>: wrong number of args for and: want at least 1 got 0"#);
    check("{{not 1 2}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <not>: wrong number of args for not: want 1 got 2"#);
    // END CORPUS funcs
    finish();
}

#[test]
#[rustfmt::skip]
#[allow(clippy::too_many_lines)]
fn header_mode() {
    // BEGIN CORPUS header
    check_header("{{json .Name}} {{upper .Name}} {{lower .Name}} {{title .Name}}", r#"{"Name":"NAME tag"}"#,
        "NAME tag NAME tag NAME tag NAME tag");
    check_header(r#"{{truncate .Name 3}}|{{pad .Name 1 1}}|{{split .Name ","}}|{{join .Name ","}}"#, r#"{"Name":"a,b"}"#,
        "a,b|a,b|a,b|a,b");
    check_header("{{.ID | truncate 3}}", r#"{"ID":"PLUGIN ID"}"#,
        "3");
    check_header("{{upper .N}}", r#"{"N":3}"#,
        "3");
    check_header("{{upper}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <upper>: wrong number of args for upper: want 1 got 0"#);
    check_header("{{len .Name}}", r#"{"Name":"NAME"}"#,
        "4");
    // END CORPUS header
    finish();
}
