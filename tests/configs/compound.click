// A fixture using most of the language: defines, compounds with formal
// parameters (positional, keyword, rest), nested and scoped compounds,
// anonymous elements, ports, and a require.
require(tstpackage);
define($count 3, $label "lbl $count");

# a preprocessor-style line, ignored

elementclass Stage { $n, TAG $t, __REST__ $more |
    elementclass Inner { input -> TstPass($t) -> output }
    input -> c :: TstPass($n) -> Inner -> output;
    input [1] -> TstPass($more) -> [1] output;
}

src :: TstSrc;
two :: TstTwo;
src -> s :: Stage($count, TAG 'x', a, b) -> two;
TstSrc -> [1] s [1] -> TstSink;
two [1] -> /* anonymous */ TstPass($label) -> TstSink;
two [0] -> TstSink;
