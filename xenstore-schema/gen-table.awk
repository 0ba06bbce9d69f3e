# gen-table.awk -- generate tools/lib/xm_schema_table.c from schema.txt.
#
# Usage: awk -f gen-table.awk schema.txt > xm_schema_table.c
#
# Reads the "|"-separated schema (see the header of schema.txt), checks
# each line's shape (six columns, a known type, an absolute pattern,
# known writer and readers) and prints the table of struct xm_schema_key
# declared in xm_schema.h.  Any malformed line stops the build with a
# message naming the line.  Plain POSIX awk.

function trim(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    return s
}

function cstr(s) {
    gsub(/\\/, "\\\\", s)
    gsub(/"/, "\\\"", s)
    return "\"" s "\""
}

function fail(msg) {
    printf "%s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"
    failed = 1
    exit 1
}

function check_who(list, what,    n, parts, i) {
    n = split(list, parts, ",")
    if (n == 0)
        fail("empty " what)
    for (i = 1; i <= n; i++)
        if (parts[i] != "agent" && parts[i] != "xl" && parts[i] != "guest")
            fail("unknown " what " '" parts[i] "'")
}

BEGIN {
    FS = "|"
    n = 0
}

/^[ \t]*(#|$)/ { next }

{
    if (NF != 6)
        fail("expected 6 columns, got " NF)
    pattern = trim($1); type = trim($2); writer = trim($3)
    readers = trim($4); perms = trim($5); meaning = trim($6)

    if (pattern !~ /^\/[A-Za-z0-9_@<>\/-]*$/ || pattern ~ /\/\/|\/$/)
        fail("bad path pattern '" pattern "'")
    if (seen[pattern]++)
        fail("duplicate pattern '" pattern "'")
    rest = pattern
    while (match(rest, /<[^>]*>/)) {
        ph = substr(rest, RSTART, RLENGTH)
        if (ph != "<id>" && ph != "<domid>" && ph != "<host>" && ph != "<n>")
            fail("unknown placeholder " ph)
        rest = substr(rest, RSTART + RLENGTH)
    }
    check_who(writer, "writer")
    check_who(readers, "reader")
    if (perms !~ /^[nrwb]([0-9]+|<domid>)([ ]+[nrwb]([0-9]+|<domid>))*$/)
        fail("bad perms '" perms "'")
    if (perms ~ /<domid>/ && pattern !~ /<domid>/)
        fail("perms use <domid> but the pattern has none")
    if (meaning == "")
        fail("no meaning")

    ctype = ""; enumv = "NULL"; min = "0"; max = "0"; flags = ""
    if (type == "dir") {
        ctype = "XM_SCHEMA_DIR"; flags = "XM_SCHEMA_F_DIR"
    } else if (type == "string") {
        ctype = "XM_SCHEMA_STRING"
    } else if (type == "uint") {
        ctype = "XM_SCHEMA_UINT"
    } else if (type ~ /^uint\([0-9]+-[0-9]+\)$/) {
        ctype = "XM_SCHEMA_UINT"; flags = "XM_SCHEMA_F_RANGE"
        r = substr(type, 6, length(type) - 6)
        split(r, lim, "-")
        if (length(lim[1]) > 18 || length(lim[2]) > 18 || \
            lim[1] + 0 > lim[2] + 0)
            fail("bad range in '" type "'")
        min = lim[1] "u"; max = lim[2] "u"
    } else if (type == "int") {
        ctype = "XM_SCHEMA_INT"
    } else if (type == "bool") {
        ctype = "XM_SCHEMA_BOOL"
    } else if (type == "json") {
        ctype = "XM_SCHEMA_JSON"
    } else if (type == "hex") {
        ctype = "XM_SCHEMA_HEX"
    } else if (type ~ /^enum\([a-z0-9-]+(,[a-z0-9-]+)*\)$/) {
        ctype = "XM_SCHEMA_ENUM"
        enumv = cstr(substr(type, 6, length(type) - 6))
    } else {
        fail("unknown type '" type "'")
    }
    if (pattern ~ /</)
        flags = flags (flags == "" ? "" : " | ") "XM_SCHEMA_F_PLACEHOLDER"
    if (flags == "")
        flags = "0"

    row[n++] = sprintf("    { %s,\n      %s, %s, %s, %s,\n" \
                       "      %s, %s, %s,\n      %s,\n      %s },",
                       cstr(pattern), ctype, enumv, min, max,
                       cstr(perms), cstr(writer), cstr(readers), flags,
                       cstr(meaning))
}

END {
    if (failed)
        exit 1
    if (n == 0) {
        print "gen-table.awk: no keys in the schema" > "/dev/stderr"
        exit 1
    }
    print "/*"
    print " * xm_schema_table.c -- GENERATED from xenstore-schema/schema.txt"
    print " * by xenstore-schema/gen-table.awk.  Do not edit: change the"
    print " * schema and rebuild."
    print " */"
    print "#include \"xm_schema.h\""
    print ""
    print "const struct xm_schema_key xm_schema_keys[] = {"
    for (i = 0; i < n; i++)
        print row[i]
    print "};"
    print ""
    printf "const unsigned xm_schema_nkeys = %d;\n", n
}
