"""Tests of the Click configuration language (nf.config).

The element classes used here are dummies defined in this file (Tst*), so the
tests do not depend on the element library.
"""

import pathlib

import pytest

from nf.config import (ElementDecl, Graph, build_elements, check, check_main, parse_file,
                       parse_string, port_usage, render)
from nf.element import Arg, Element
from nf.errors import ConfigError, ConfigErrors, Location

HERE = pathlib.Path(__file__).parent
FIXTURES = HERE / "configs"
SHIPPED = HERE.parent / "configs"


# -- dummy element classes ------------------------------------------------------------

class TstSrc(Element):
    """TstSrc([ITEMS])

    Test source: no input, one output."""
    PORTS = "0/1"
    ARGS = (Arg("ITEMS", "raw", rest=True, doc="ignored"),)


class TstSink(Element):
    """TstSink([ITEMS])

    Test sink: one input, no output."""
    PORTS = "1/0"
    ARGS = (Arg("ITEMS", "raw", rest=True, doc="ignored"),)


class TstPass(Element):
    """TstPass([ITEMS])

    Test pass-through: one input, one output."""
    PORTS = "1/1"
    ARGS = (Arg("ITEMS", "raw", rest=True, doc="ignored"),)


class TstTwo(Element):
    """TstTwo([ITEMS])

    Test splitter: one input, two outputs."""
    PORTS = "1/2"
    ARGS = (Arg("ITEMS", "raw", rest=True, doc="ignored"),)


class TstOpt(Element):
    """TstOpt()

    Test element with one or two outputs."""
    PORTS = "1/1-2"


class TstNum(Element):
    """TstNum(N)

    Test element whose configuration must be an integer."""
    PORTS = "1/1"
    ARGS = (Arg("N", "int", positional=True, doc="a number"),)


class TstBadPorts(Element):
    """TstBadPorts()

    Test element with a malformed port count."""
    PORTS = "one/two"


CONFIGURED = []          # names in the order TstAddr / TstUseAddr were configured


class TstAddr(Element):
    """TstAddr(NAME ADDR)

    Test stand-in for AddressInfo: configures first and fills the table."""
    PORTS = "0/0"
    CONFIGURE_PHASE = 0
    ARGS = (Arg("ITEMS", "raw", rest=True, doc="NAME ADDR pairs"),)

    def configure(self):
        CONFIGURED.append(self.name)
        for item in self.items:
            name, addr = item.split()
            self.addresses.add(name, [addr])


class TstUseAddr(Element):
    """TstUseAddr(ADDR)

    Test element that reads an IP address, possibly an AddressInfo name."""
    PORTS = "0/0"
    ARGS = (Arg("ADDR", "ip", positional=True, doc="an address"),)

    def configure(self):
        CONFIGURED.append(self.name)


# -- helpers --------------------------------------------------------------------------

def errors_of(text, defines=None, filename="f.click"):
    """(line, col, message) of each error parsing ``text`` raises."""
    with pytest.raises(ConfigError) as info:
        parse_string(text, filename, defines)
    errs = info.value.errors if isinstance(info.value, ConfigErrors) else [info.value]
    for e in errs:
        assert e.loc.file == filename
    return [(e.loc.line, e.loc.col, e.message) for e in errs]


def one_error(text, defines=None):
    errs = errors_of(text, defines)
    assert len(errs) == 1, errs
    return errs[0]


def check_errors(text):
    g = parse_string(text, "f.click")
    return [(e.loc.line, e.loc.col, e.message) for e in check(g)]


def conns(g):
    return [c.key() for c in g.connections]


def decls(g):
    return [(d.name, d.cls, d.config) for d in g.elements.values()]


# -- declarations and connections -------------------------------------------------------

def test_declarations_connections_and_ports():
    g = parse_string("a :: TstSrc; b, c :: TstPass(x, y)\n"
                     "d :: TstTwo\n"
                     "a -> b -> d; d [1] -> [0] c -> TstSink; d[0]->TstSink")
    assert decls(g) == [("a", "TstSrc", ""), ("b", "TstPass", "x, y"),
                        ("c", "TstPass", "x, y"), ("d", "TstTwo", ""),
                        ("TstSink@5", "TstSink", ""), ("TstSink@6", "TstSink", "")]
    assert conns(g) == [("a", 0, "b", 0), ("b", 0, "d", 0), ("d", 1, "c", 0),
                        ("c", 0, "TstSink@5", 0), ("d", 0, "TstSink@6", 0)]
    assert check(g) == []


def test_inline_declarations_in_chain_and_anonymous_numbering():
    g = parse_file(FIXTURES / "chain.click")
    assert decls(g) == [("src", "TstSrc", ""), ("TstPass@2", "TstPass", ""),
                        ("p", "TstPass", "PARAM 1"), ("TstSink@4", "TstSink", "")]
    assert conns(g) == [("src", 0, "TstPass@2", 0), ("TstPass@2", 0, "p", 0),
                        ("p", 0, "TstSink@4", 0)]
    assert g.elements["p"].loc.line == 1 and g.elements["p"].loc.col == 29


def test_anonymous_name_skips_names_already_taken():
    g = parse_string("TstSrc -> s :: TstSink; TstSrc@1 :: TstSrc; TstSrc@1 -> TstSink")
    assert list(g.elements) == ["TstSrc@2", "s", "TstSrc@1", "TstSink@4"]


def test_locations_of_declarations_and_connections():
    g = parse_string("a :: TstSrc\n\n  b :: TstSink;  a\n  -> b", "x.click")
    assert str(g.elements["b"].loc) == "x.click:3:3"
    assert str(g.connections[0].loc) == "x.click:4:3"


def test_configuration_strings_are_raw_with_comments_removed():
    g = parse_string('a :: TstPass(1, (2, 3), "a)b // c", \'/* d\' // gone )\n'
                     '  , e /* gone */ f, \\) ) -> TstSink; TstSrc -> a')
    assert g.elements["a"].config == ('1, (2, 3), "a)b // c", \'/* d\' \n'
                                      '  , e   f, \\)')


def test_comments_and_hash_lines():
    g = parse_string("# 1 \"preprocessed\"\n/* a\n -> b */ a :: TstSrc // -> x\n"
                     "  # indented hash line\na -> TstSink")
    assert decls(g) == [("a", "TstSrc", ""), ("TstSink@2", "TstSink", "")]


def test_semicolons_optional_and_statements_split_at_names():
    g = parse_string("a :: TstSrc b :: TstSink a -> b")
    assert conns(g) == [("a", 0, "b", 0)]


def test_require_recorded():
    g = parse_string("require(pkga, package \"b\"); require(pkga)")
    assert g.requirements == ["pkga", 'package "b"']


# -- parameters ---------------------------------------------------------------------------

def test_define_and_substitution():
    g = parse_string("define($dev eth0, $n 5, $both $dev:$n)\n"
                     "a :: TstPass($dev, ${n}x, \"in $n quotes\", 'not $n', $both)")
    assert g.elements["a"].config == "eth0, 5x, \"in 5 quotes\", 'not $n', eth0:5"
    assert g.defines == {"dev": "eth0", "n": "5", "both": "eth0:5"}


def test_defines_override_file_values_and_add_new_ones():
    g = parse_string("define($n 5)\na :: TstPass($n, $extra)", defines={"n": "7", "$extra": "e"})
    assert g.elements["a"].config == "7, e"
    assert g.defines == {"n": "7", "extra": "e"}


def test_define_applies_to_whole_file():
    g = parse_string("a :: TstPass($x); define($x late)")
    assert g.elements["a"].config == "late"


# -- compounds ----------------------------------------------------------------------------

def test_compound_expansion_names_and_ports():
    g = parse_string("elementclass C { input -> x :: TstPass -> output;\n"
                     "  input [1] -> TstPass -> [1] output }\n"
                     "s :: TstSrc; t :: TstSrc; c :: C;\n"
                     "s -> c -> TstSink; t -> [1] c [1] -> TstSink")
    assert list(g.elements) == ["s", "t", "c/x", "c/TstPass@2", "TstSink@4", "TstSink@5"]
    assert sorted(conns(g)) == sorted([("s", 0, "c/x", 0), ("c/x", 0, "TstSink@4", 0),
                                       ("t", 0, "c/TstPass@2", 0),
                                       ("c/TstPass@2", 0, "TstSink@5", 0)])
    assert check(g) == []


def test_compound_element_locations_point_into_the_class_body():
    g = parse_string("elementclass C {\n  input -> x :: TstPass -> output }\n"
                     "TstSrc -> C -> TstSink")
    assert (g.elements["C@2/x"].loc.line, g.elements["C@2/x"].loc.col) == (2, 12)


def test_anonymous_compound_and_passthrough():
    g = parse_string("s :: TstSrc; s -> { input -> output } -> { input -> TstPass -> output }"
                     " -> TstSink")
    assert list(g.elements) == ["s", "@3/TstPass@1", "TstSink@4"]
    assert conns(g) == [("s", 0, "@3/TstPass@1", 0), ("@3/TstPass@1", 0, "TstSink@4", 0)]


def test_chained_passthrough_compounds_keep_port_numbers():
    g = parse_string("elementclass Thru { input -> output; input [1] -> [1] output }\n"
                     "s :: TstSrc; t :: TstTwo; a :: TstSink; b :: TstSink;\n"
                     "s -> t; t -> Thru -> Thru -> a; t [1] -> [1] x :: Thru [1] -> b")
    assert list(g.elements) == ["s", "t", "a", "b"]
    assert conns(g) == [("s", 0, "t", 0), ("t", 0, "a", 0), ("t", 1, "b", 0)]
    assert check(g) == []


def test_spliced_connection_reports_the_line_written_at_the_outer_level():
    errs = check_errors("elementclass C { input -> x :: TstPass -> output }\n"
                        "s :: TstSrc; c :: C;\n"
                        "s -> c;\n"
                        "c -> TstSink;\n"
                        "c -> TstSink;\n")
    assert errs == [(5, 3, "'c/x' output 0 connected to more than one input ('TstSink@3' "
                           "input 0, 'TstSink@4' input 0); an output feeds one input: use "
                           "Tee to copy packets")]
    g = parse_string("elementclass C { input -> x :: TstPass -> output }\n"
                     "s :: TstSrc;\ns -> c :: C -> TstSink")
    assert [(c.loc.line, c.loc.col) for c in g.connections] == [(3, 3), (3, 13)]


def test_compound_unconnected_port_drops_its_inner_connections():
    g = parse_string("elementclass C { input -> a :: TstPass -> output;"
                     " input [1] -> b :: TstPass -> [1] output }\n"
                     "TstSrc -> c :: C -> TstSink")
    assert ("c/b" in g.elements) and not any("c/b" in (s, d) for s, _, d, _ in conns(g))


def test_nested_compounds_use_other_compounds():
    g = parse_string("elementclass A { $v | input -> TstPass(a$v) -> output }\n"
                     "elementclass B { $w | input -> x :: A($w) -> y :: A(2) -> output }\n"
                     "TstSrc -> b :: B(1) -> TstSink")
    assert decls(g) == [("TstSrc@1", "TstSrc", ""), ("b/x/TstPass@1", "TstPass", "a1"),
                        ("b/y/TstPass@1", "TstPass", "a2"), ("TstSink@3", "TstSink", "")]
    assert check(g) == []


def test_compound_defined_inside_compound_is_scoped():
    g = parse_string("elementclass Outer { elementclass In { input -> TstPass(inner) -> output }\n"
                     "  input -> In -> output }\n"
                     "TstSrc -> Outer -> In -> TstSink")
    assert g.elements["Outer@2/In@1/TstPass@1"].config == "inner"
    # outside Outer, 'In' is not a compound: just an (unknown) element class name
    assert g.elements["In@3"].cls == "In"
    assert check(g)[0].message == "unknown element class 'In'"


def test_elementclass_is_lexically_scoped_and_not_recursive():
    g = parse_string("TstSrc -> Wrap -> TstSink;\n"       # before the definition: a plain class
                     "elementclass Wrap { input -> TstPass(first) -> output }\n"
                     "elementclass TstPass { input -> TstPass(inner) -> output }\n"
                     "TstSrc -> Wrap -> TstPass -> TstSink")
    assert g.elements["Wrap@2"].cls == "Wrap"
    # Wrap's body was defined before TstPass was redefined: it uses the element class
    assert g.elements["Wrap@5/TstPass@1"].config == "first"
    # the redefined TstPass wraps the original one rather than itself
    assert g.elements["TstPass@6/TstPass@1"].config == "inner"


def test_elementclass_synonym():
    g = parse_string("elementclass P TstPass; elementclass Q P; TstSrc -> Q(1) -> TstSink")
    assert decls(g)[1] == ("Q@2", "TstPass", "1")


def test_compound_positional_keyword_and_rest_parameters():
    g = parse_file(FIXTURES / "compound.click")
    assert g.requirements == ["tstpackage"]
    assert g.elements["s/c"].config == "3"
    assert g.elements["s/Inner@2/TstPass@1"].config == "'x'"
    assert g.elements["s/TstPass@3"].config == "a, b"
    assert g.elements["TstPass@6"].config == '"lbl 3"'
    assert check(g) == []


def test_compound_keyword_parameter_defaults_to_empty():
    g = parse_string("elementclass K { $a, KEY $k | input -> TstPass($a/$k) -> output }\n"
                     "TstSrc -> K(1) -> K(2, KEY z) -> TstSink")
    assert g.elements["K@2/TstPass@1"].config == "1/"
    assert g.elements["K@3/TstPass@1"].config == "2/z"


def test_compound_parameters_shadow_defines_and_see_enclosing_ones():
    g = parse_string("define($a top, $b topb)\n"
                     "elementclass C { $a | define($c $a$b) input -> TstPass($a, $b, $c) "
                     "-> output }\nTstSrc -> C(arg) -> TstSink")
    assert g.elements["C@2/TstPass@1"].config == "arg, topb, argtopb"


# -- render -------------------------------------------------------------------------------

def test_render_text():
    g = parse_string("require(p); a :: TstTwo(1, 2); b :: TstSink; TstSrc -> a; "
                     "a [1] -> [0] b; a -> TstSink")
    assert render(g) == ("require(p);\na :: TstTwo(1, 2);\nb :: TstSink;\n"
                         "TstSrc@3 :: TstSrc;\nTstSink@4 :: TstSink;\n\n"
                         "TstSrc@3 -> a;\na [1] -> b;\na -> TstSink@4;\n")


def _round_trip(g):
    again = parse_string(render(g), "rendered")
    assert again == g
    assert render(again) == render(g)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.click")), ids=lambda p: p.name)
def test_render_round_trip_fixtures(path):
    _round_trip(parse_file(path))


@pytest.mark.parametrize("name", ["nat.click", "firewall.click"])
def test_render_round_trip_shipped_configs(name):
    path = SHIPPED / name
    if not path.exists():
        pytest.skip("%s not written yet" % path)
    _round_trip(parse_file(path))


def test_round_trip_of_generated_config():
    text = ["elementclass P { $n | input -> c :: TstPass($n) -> q :: TstTwo -> output;"
            " q [1] -> TstSink }", "src :: TstSrc"]
    text += ["e%d :: P(%d)" % (i, i) for i in range(200)]
    text.append(" -> ".join(["src"] + ["e%d" % i for i in range(200)] + ["TstSink"]))
    g = parse_string("\n".join(text))
    assert len(g.elements) == 2 + 3 * 200
    assert g.elements["e199/c"].config == "199"
    assert check(g) == []
    _round_trip(g)


def test_graph_equality_sees_differences():
    g1 = parse_string("a :: TstSrc(1) -> TstSink")
    assert g1 != parse_string("a :: TstSrc(2) -> TstSink")
    assert g1 != parse_string("a :: TstSrc(1); TstSink")
    assert g1 == parse_string("a :: TstSrc(1) -> TstSink", "other.click", {"x": "1"})


# -- lexical errors -----------------------------------------------------------------------

def test_error_unterminated_comment():
    assert one_error("a :: TstSrc;\n  /* never closed") == (
        2, 3, "unterminated comment: '/*' has no closing '*/'")


def test_error_unterminated_comment_in_config():
    assert one_error("a :: TstPass(1 /* oops)\n") == (
        1, 16, "unterminated comment: '/*' has no closing '*/'")


def test_error_unbalanced_paren():
    assert one_error("a :: TstSrc;\nb :: TstPass(1, (2)\n -> c") == (
        2, 13, "unbalanced '(' opened at 2:13: expected ')' before end of file")


def test_error_unterminated_string():
    assert one_error('a :: TstPass(1, "abc)\n') == (
        1, 17, 'unterminated string: the " at 1:17 has no closing quote')


def test_error_unexpected_character():
    assert one_error("a :: TstSrc;\na % b") == (2, 3, "unexpected character '%'")


def test_error_unexpected_close_paren():
    assert one_error("a :: TstSrc)") == (1, 12, "unexpected ')' with no '(' open")


def test_error_hash_not_at_line_start():
    assert one_error("a :: TstSrc # x") == (
        1, 13, "unexpected '#' (a '#' line must start with '#')")


# -- syntax errors ------------------------------------------------------------------------

def test_error_expected_element_after_arrow():
    assert one_error("a :: TstSrc;\na -> ;") == (
        2, 6, "expected element name or class after '->', found ';'")
    assert one_error("a :: TstSrc -> ") == (
        1, 16, "expected element name or class after '->', found end of file")


def test_error_expected_element_after_port():
    assert one_error("[0] ;") == (1, 5, "expected element name or class after a port, "
                                        "found ';'")


def test_error_port_number():
    assert one_error("a :: TstTwo; a [x] -> b") == (
        1, 17, "expected port number after '[', found 'x'")
    assert one_error("a :: TstTwo; a [1 -> b") == (
        1, 19, "expected ']' after port number 1, found '->'")


def test_error_expected_class_after_colons():
    assert one_error("a :: -> b") == (1, 6, "expected element class after '::', found '->'")


def test_error_declaration_list_needs_colons():
    assert one_error("a, b;") == (1, 5, "expected '::' and a class after element names "
                                        "'a, b', found ';'")
    assert one_error("a, -> b") == (1, 4, "expected an element name after ',', found '->'")


def test_error_several_names_in_connection():
    assert one_error("a, b :: TstPass -> c") == (
        1, 17, "a declaration of several elements cannot be part of a connection; "
               "declare them first, then connect them by name")


def test_error_after_element():
    assert one_error("a :: TstSrc :: TstSink") == (
        1, 13, "expected '->' or ';' after an element, found '::'")
    assert one_error("a :: TstSrc($x) $x") == (
        1, 17, "expected '->' or ';' after an element, found parameter '$x' "
               "($parameters can only be used inside a configuration string)")


def test_error_ports_at_chain_ends():
    assert one_error("a :: TstSrc; [1] a -> TstSink") == (
        1, 14, "input port at the start of a chain: nothing connects to it "
               "(expected an element before it and '->')")
    assert one_error("a :: TstTwo; TstSrc -> a [1];") == (
        1, 26, "output port at the end of a chain: it connects to nothing "
               "(expected '->' and an element after it)")


def test_error_unclosed_compound():
    assert one_error("elementclass C {\n input -> output\n") == (
        3, 1, "expected '}' to close the compound opened at 1:16, found end of file")


def test_error_unexpected_close_brace():
    assert one_error("a :: TstSrc }") == (1, 13, "unexpected '}' with no compound open")


def test_error_statement_start():
    assert one_error("-> a") == (
        1, 1, "expected a declaration, connection or 'elementclass', found '->'")
    assert one_error("(1)") == (
        1, 1, "expected a declaration, connection or 'elementclass', found '(' "
              "(a configuration string) (a configuration must follow an element class)")
    assert one_error("elementclass C { input -> output || input -> output }") == (
        1, 34, "expected '->' or ';' after an element, found '||' "
               "(compound overloading with '||' and '...' is not supported)")


def test_error_double_arrow_unsupported():
    assert one_error("a :: TstTwo; a => b") == (
        1, 16, "'=>' port-list connections are not supported; use '->'")


def test_error_elementclass_syntax():
    assert one_error("elementclass { }") == (
        1, 14, "expected the new class's name after 'elementclass', found '{'")
    assert one_error("elementclass C -> x") == (
        1, 16, "expected '{' or a class name after 'elementclass C', found '->'")


def test_error_require_and_define_need_parentheses():
    assert one_error("require pkg") == (
        1, 9, "expected '(' and the required packages after 'require', found 'pkg'")
    assert one_error("define $x") == (
        1, 8, "expected '($name value, ...)' after 'define', found parameter '$x'")


def test_error_compound_formals():
    assert one_error("elementclass C { $a, 3 | input -> output }") == (
        1, 24, "expected a parameter like '$name' in the compound's parameter list, "
               "found '|'")
    assert one_error("elementclass C { $a $b | input -> output }") == (
        1, 21, "expected ',' or '|' after compound parameter $a, found parameter '$b'")
    assert one_error("elementclass C { $a, $a | input -> output }") == (
        1, 22, "parameter $a defined twice in the parameter list")
    assert one_error("elementclass C { K $k, $a | input -> output }") == (
        1, 24, "compound parameters out of order at $a: expected positional parameters, "
               "then KEYWORD ones, then __REST__")


# -- errors found while flattening --------------------------------------------------------

def test_error_undefined_parameter():
    assert one_error("a :: TstSrc;\nb :: TstPass(1,\n   x$nope) -> TstSink") == (
        3, 5, "undefined parameter $nope")


def test_error_undefined_parameter_in_compound_body():
    assert one_error("elementclass C { $a |\n input -> TstPass($a, ${b}) -> output }\n"
                     "TstSrc -> C(1) -> C(2) -> TstSink") == (
        2, 23, "undefined parameter $b")


def test_error_undefined_parameter_in_define_value():
    assert one_error("define($a 1,\n  $b x$c)") == (2, 7, "undefined parameter $c")


def test_error_define_syntax():
    assert one_error("define($a 1, b 2)") == (1, 14, "expected '$name value' in define(), "
                                                     "got 'b 2'")


def test_error_define_twice():
    assert one_error("define($a 1)\ndefine($a 2)") == (
        2, 11, "parameter $a defined twice (first defined at f.click:1:11)")


def test_error_define_repeats_formal():
    assert one_error("elementclass C { $a | define($a 2) input -> output }\n"
                     "TstSrc -> C(1) -> TstSink") == (
        1, 33, "parameter $a is already a parameter of this compound")


def test_error_redeclared():
    assert one_error("a :: TstSrc;\nb :: TstSink;\n  a :: TstPass") == (
        3, 3, "element 'a' redeclared (first declared at f.click:1:1)")


def test_error_all_digit_name():
    assert one_error("12 :: TstSrc") == (
        1, 1, "element name '12' has an all-digit component (expected a name with a "
              "letter, '_' or '@')")


def test_error_config_on_reference():
    assert one_error("a :: TstSrc; a(1) -> TstSink") == (
        1, 14, "element 'a' is already declared (at f.click:1:1); a configuration can only "
               "be given where an element is declared")


def test_error_unknown_element():
    assert one_error("a :: TstSrc;\na -> foo") == (
        2, 6, "unknown element 'foo' (expected an element declared earlier in this file, "
              "or a class name)")
    assert one_error("foo -> a :: TstSink; foo :: TstSrc") == (
        1, 1, "unknown element 'foo' (expected an element declared earlier in this file, "
              "or a class name)")
    assert one_error("elementclass C { input -> zz -> output }\nTstSrc -> C -> TstSink") == (
        1, 27, "unknown element 'zz' (expected an element declared earlier in this "
               "compound, or a class name)")


def test_error_input_outside_compound():
    assert one_error("input -> TstSink") == (
        1, 1, "unknown element 'input' ('input' and 'output' exist only inside a compound)")


def test_error_input_reserved_in_compound():
    assert one_error("elementclass C { input :: TstPass; input -> output }\n"
                     "TstSrc -> C -> TstSink") == (
        1, 18, "'input' is reserved inside a compound (it stands for the compound's inputs) "
               "and cannot be declared")


def test_error_pseudo_element_configured():
    assert one_error("elementclass C { input(1) -> output }\nTstSrc -> C -> TstSink") == (
        1, 18, "'input' takes no configuration")


def test_error_pseudo_elements_used_backwards():
    assert errors_of("elementclass C { output -> x :: TstPass -> input }\n"
                     "TstSrc -> C -> TstSink") == [
        (1, 25, "'output' can only be the destination of a connection inside a compound "
                "(as in 'x -> [0] output')"),
        (1, 41, "'input' can only be the source of a connection inside a compound "
                "(as in 'input [0] -> x')")]


def test_error_compound_port_gap():
    assert one_error("elementclass C { input [1] -> TstPass -> output }\n"
                     "TstSrc -> [1] C -> TstSink") == (
        1, 16, "compound 'C' input 0 unused: its body uses input 1 but nothing connects "
               "input 0")


def test_error_compound_has_no_output():
    assert one_error("elementclass C { input -> TstSink }\nTstSrc -> C;\n"
                     "C -> TstSink") == (
        3, 3, "compound 'C' has no output but is used with an output connection")


def test_error_compound_port_out_of_range():
    assert one_error("elementclass C { input -> TstPass -> output }\n"
                     "s :: TstSrc; c :: C;\ns -> [1] c -> TstSink") == (
        3, 3, "compound 'C' has 1 input, but input 1 is connected")


def test_error_compound_argument_count():
    assert one_error("elementclass C { $a, $b | input -> output }\n"
                     "TstSrc -> x :: C(1) -> TstSink") == (
        2, 11, "compound 'C' takes 2 arguments, got 1")
    assert one_error("elementclass C { input -> output }\nTstSrc -> C(1) -> TstSink") == (
        2, 11, "compound 'C' takes 0 arguments, got 1")


def test_error_compound_keyword_arguments():
    assert one_error("elementclass C { $a, K $k | input -> output }\n"
                     "TstSrc -> C() -> TstSink") == (
        2, 11, "compound 'C' takes at least 1 argument, got 0")
    assert one_error("elementclass C { $a, K $k | input -> output }\n"
                     "TstSrc -> C(1, J 2) -> TstSink") == (
        2, 11, "compound 'C' got unexpected argument 'J 2' (expected keywords: K)")


def test_several_errors_are_all_reported():
    errs = errors_of("a :: TstSrc($x);\na :: TstSink;\na -> nope")
    assert errs == [(1, 13, "undefined parameter $x"),
                    (2, 1, "element 'a' redeclared (first declared at f.click:1:1)"),
                    (3, 6, "unknown element 'nope' (expected an element declared earlier "
                           "in this file, or a class name)")]


def test_parse_file_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.click"
    p.write_text("a :: TstSrc\n -> ;\n")
    with pytest.raises(ConfigError) as info:
        parse_file(p)
    assert str(info.value) == "%s:2:5: expected element name or class after '->', found ';'" % p
    with pytest.raises(ConfigError) as info:
        parse_file(tmp_path / "missing.click")
    assert str(info.value) == ("%s:1:1: cannot read configuration file: No such file or "
                               "directory" % (tmp_path / "missing.click"))


# -- check --------------------------------------------------------------------------------

def test_check_unknown_class():
    assert check_errors("a :: TstSrc -> NoSuchThing") == [
        (1, 16, "unknown element class 'NoSuchThing'")]


def test_check_configuration_errors_are_all_collected():
    errs = check_errors("TstSrc -> a :: TstNum(x) -> b :: TstNum(1, 2) -> TstSink")
    assert [(l, c) for l, c, _ in errs] == [(1, 11), (1, 29)]
    assert errs[0][2].startswith("a :: TstNum: keyword N: expected integer")
    assert errs[1][2].startswith("b :: TstNum: too many arguments")


def test_check_port_out_of_range():
    assert check_errors("c :: TstPass; TstSrc -> c; c [1] -> TstSink; c -> TstSink") == [
        (1, 34, "'c' :: TstPass has 1 output, but output 1 is connected")]
    assert check_errors("s :: TstSink; TstSrc -> s; s -> TstSink") == [
        (1, 30, "'s' :: TstSink has no outputs, but output 0 is connected")]
    assert check_errors("o :: TstOpt; TstSrc -> o -> TstSink; o [2] -> TstSink;"
                        "o [1] -> TstSink") == [
        (1, 44, "'o' :: TstOpt has at most 2 outputs, but output 2 is connected")]


def test_check_unconnected_ports():
    assert check_errors("c :: TstPass;\nTstSrc -> c") == [(1, 1, "'c' output 0 unconnected")]
    assert check_errors("t :: TstTwo; TstSrc -> t; t [1] -> TstSink") == [
        (1, 1, "'t' output 0 unconnected")]
    assert check_errors("x :: TstSink") == [(1, 1, "'x' input 0 unconnected")]
    # a range with a minimum of 1: one output is enough, two are fine
    assert check_errors("TstSrc -> TstOpt -> TstSink") == []


def test_check_output_connected_twice():
    assert check_errors("s :: TstSrc;\ns -> TstSink;\n s -> a :: TstSink") == [
        (3, 4, "'s' output 0 connected to more than one input ('TstSink@2' input 0, "
               "'a' input 0); an output feeds one input: use Tee to copy packets")]


def test_check_several_outputs_into_one_input_is_fine():
    assert check_errors("k :: TstSink; TstSrc -> k; TstSrc -> k") == []


def test_check_connection_to_unknown_element():
    g = Graph("g.click")
    g.add_element(ElementDecl("a", "TstPass"))
    g.connect("a", 0, "ghost", 0, Location("g.click", 3, 1))
    g.connect("spook", 0, "a", 0, Location("g.click", 4, 2))
    assert [(e.loc.line, e.loc.col, e.message) for e in check(g)] == [
        (3, 1, "connection to unknown element 'ghost'"),
        (4, 2, "connection from unknown element 'spook'")]


def test_check_bad_port_count():
    assert check_errors("TstBadPorts") == [
        (1, 1, "'TstBadPorts@1' :: TstBadPorts has a bad port count 'one/two' "
               "(expected like '1/1' or '1/1-2')")]


def test_check_sets_port_counts_and_port_usage():
    g = parse_string("t :: TstTwo; o :: TstOpt; TstSrc -> t -> o -> TstSink; "
                     "t [1] -> TstSink")
    elements, errs = build_elements(g)
    assert errs == [] and check(g, elements) == []
    assert (elements["t"].ninputs, elements["t"].noutputs) == (1, 2)
    assert (elements["o"].ninputs, elements["o"].noutputs) == (1, 1)
    assert port_usage(g)["t"] == (1, 2)
    assert port_usage(g)["TstSrc@3"] == (0, 1)


# -- build_elements -----------------------------------------------------------------------

class _FakeRouter:
    def __init__(self):
        from nf.args import AddressTable
        self.addresses = AddressTable()


def test_build_elements_configure_phase_and_shared_address_table():
    CONFIGURED.clear()
    g = parse_string("u :: TstUseAddr(inside); info :: TstAddr(inside 10.0.0.1);"
                     " v :: TstUseAddr(10.0.0.2)")
    router = _FakeRouter()
    elements, errs = build_elements(g, router)
    assert errs == []
    assert CONFIGURED == ["info", "u", "v"]
    assert list(elements) == ["u", "info", "v"]             # declaration order
    assert elements["u"].addr == elements["info"].addresses.ip["inside"]
    assert elements["u"].addresses is router.addresses is elements["v"].addresses
    assert elements["u"].router is router
    assert elements["u"].loc.line == 1


def test_build_elements_collects_errors_in_declaration_order():
    g = parse_string("a :: TstNum(x); b :: Nope; c :: TstNum(3); d :: TstUseAddr(nowhere)")
    elements, errs = build_elements(g)
    assert list(elements) == ["c"]
    assert [e.loc.col for e in errs] == [1, 17, 44]
    assert errs[1].message == "unknown element class 'Nope'"


# -- check_main ---------------------------------------------------------------------------

def test_check_main_prints_flat_graph(capsys):
    assert check_main(str(FIXTURES / "chain.click"), ["unused=1"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert parse_string(out) == parse_file(FIXTURES / "chain.click")


def test_check_main_prints_errors(tmp_path, capsys):
    p = tmp_path / "bad.click"
    p.write_text("define($n 1)\nc :: TstPass($n);\nTstSrc -> c\nx :: Nope\n")
    assert check_main(str(p), {}) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["%s:2:1: 'c' output 0 unconnected" % p,
                                "%s:4:1: unknown element class 'Nope'" % p]
    p.write_text("a -> \n")
    assert check_main(str(p), None) == 1
    assert capsys.readouterr().err == ("%s:2:1: expected element name or class after '->', "
                                       "found end of file\n" % p)


def test_check_main_uses_defines(tmp_path, capsys):
    p = tmp_path / "d.click"
    p.write_text("TstSrc -> TstNum($n) -> TstSink\n")
    assert check_main(str(p), ["n=x"]) == 1
    assert "expected integer" in capsys.readouterr().err
    assert check_main(str(p), {"n": "4"}) == 0
    assert "TstNum@2 :: TstNum(4);" in capsys.readouterr().out


def test_check_main_rejects_malformed_defines(capsys):
    assert check_main(str(FIXTURES / "chain.click"), ["novalue"]) == 1
    assert capsys.readouterr().err == "expected name=value for a parameter, got 'novalue'\n"


def test_several_errors_print_one_per_line():
    with pytest.raises(ConfigErrors) as info:
        parse_string("a :: TstSrc($x, $y)", "m.click")
    assert str(info.value) == ("m.click:1:13: undefined parameter $x\n"
                               "m.click:1:17: undefined parameter $y")
