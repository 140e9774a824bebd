/* smtpd_policy - access maps and content rules as smtpd applies them.
 *
 * This module owns the four access table lists (libcommon/policy) and the content rules
 * (libcommon/rules, fed through libcommon/content), all opened by smtpd_policy_init()
 * before the chroot and kept until exit. It answers one access stage at a time and says
 * in Postfix's words what it did: WARN entries are logged as they are met; a refusal
 * (REJECT, DEFER, 4NN, 5NN) becomes the command's reply, a log line with the client,
 * sender, recipient and HELO name, and an error of the session; a HOLD or DISCARD is
 * logged and its reason kept for the commit. Which stage runs when (smtpd_delay_reject)
 * and what a HOLD or DISCARD covers is decided by smtpd_cmd.c, and the message side by
 * smtpd_data.c, which gets a content scanner from here with a log callback that names the
 * queue ID, the header or body line and the rule. Local submission (public/submit) is
 * trusted like Postfix's sendmail: no access table applies to it; content rules do.
 * Nothing here fails at run time: a table that cannot answer is logged by libcommon and
 * skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "rules.h"
#include "smtp_reply.h"
#include "smtpd.h"
#include "smtpd_policy.h"
#include "smtpd_restrict.h"

#define SMTPD_POLICY_SUBJECT_MAX 100   /* octets of a header or body line in a log line */
#define SMTPD_POLICY_LABEL 340         /* "name[addr]" */
#define SMTPD_POLICY_WHAT  700         /* "<a@b.example>: Sender address" */
#define SMTPD_POLICY_TAIL  1400        /* "; from=<..> to=<..> proto=.. helo=<..>" */

#define SMTPD_POLICY_NSTAGES POLICY_STAGES

static struct policy_tables *smtpd_policy_tables[SMTPD_POLICY_NSTAGES];
static struct content_rules  smtpd_policy_rules;

/* smtpd_policy_rules_load - each content rule setting: nothing, or exactly one pcre:
 * table. */
static int
smtpd_policy_rules_load(uint32_t match_limit, char *err, size_t errlen)
{
    char  e[1024], *path;

    for (int i = 0; i < CONTENT_SETS; i++) {
        struct rules **slot = content_rules_slot(&smtpd_policy_rules, (enum content_set)i);

        if (content_set_path(smtpd.cfg, (enum content_set)i, &path, err, errlen) == -1)
            return -1;
        if (path == NULL)
            continue;
        *slot = rules_load(path, match_limit, e, sizeof(e));
        free(path);
        if (*slot == NULL) {
            snprintf(err, errlen, "%s: %s", content_set_key((enum content_set)i), e);
            return -1;
        }
    }
    return 0;
}

/* smtpd_policy_init - see smtpd_policy.h. */
int
smtpd_policy_init(char *err, size_t errlen)
{
    struct config *cfg = smtpd.cfg;
    uint32_t       match_limit = (uint32_t)config_int(cfg, "pcre_match_limit");
    const char    *null_key = config_str(cfg, "smtpd_null_access_lookup_key");
    char           e[1024];
    size_t         i, n;

    smtpd.delay_reject = config_bool(cfg, "smtpd_delay_reject");
    for (i = 0; i < SMTPD_POLICY_NSTAGES; i++) {
        char *const *specs = config_list(cfg, policy_stage_key((enum policy_stage)i), &n);

        smtpd_policy_tables[i] = policy_tables_open(specs, n, config_dir(cfg), match_limit,
                                                    null_key, e, sizeof(e));
        if (smtpd_policy_tables[i] == NULL) {
            snprintf(err, errlen, "%s: %s", policy_stage_key((enum policy_stage)i), e);
            smtpd_policy_free();
            return -1;
        }
    }
    if (smtpd_policy_rules_load(match_limit, err, errlen) == -1) {
        smtpd_policy_free();
        return -1;
    }
    smtpd_policy_rules.body_size_limit = config_size(cfg, "body_checks_size_limit");
    /* a logical header longer than the whole header section cannot be complete anyway */
    smtpd_policy_rules.header_max = smtpd.header_limit ? (size_t)smtpd.header_limit
                                                       : 100 * 1024;
    log_info("policy: client=%zu helo=%zu sender=%zu recipient=%zu tables, header_checks=%zu "
             "mime_header_checks=%zu body_checks=%zu rules, delay_reject=%s",
             policy_tables_count(smtpd_policy_tables[POLICY_CLIENT]),
             policy_tables_count(smtpd_policy_tables[POLICY_HELO]),
             policy_tables_count(smtpd_policy_tables[POLICY_SENDER]),
             policy_tables_count(smtpd_policy_tables[POLICY_RECIPIENT]),
             smtpd_policy_rules.header ? rules_count(smtpd_policy_rules.header) : 0,
             smtpd_policy_rules.mime_header ? rules_count(smtpd_policy_rules.mime_header) : 0,
             smtpd_policy_rules.body ? rules_count(smtpd_policy_rules.body) : 0,
             smtpd.delay_reject ? "yes" : "no");
    return 0;
}

/* smtpd_policy_free - see smtpd_policy.h. */
void
smtpd_policy_free(void)
{
    size_t i;

    for (i = 0; i < SMTPD_POLICY_NSTAGES; i++)
        policy_tables_free(&smtpd_policy_tables[i]);
    rules_free(&smtpd_policy_rules.header);
    rules_free(&smtpd_policy_rules.mime_header);
    rules_free(&smtpd_policy_rules.body);
}

/* smtpd_policy_client_label - "name[addr]" as Postfix names a client in its logs. */
static const char *
smtpd_policy_client_label(const struct smtpd_session *s, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s[%s]", s->client_name[0] ? s->client_name : "unknown", s->addr);
    return out;
}

/* Who a log line is about: the command and the envelope so far. */
struct smtpd_policy_ctx {
    struct smtpd_session *s;
    enum policy_stage     stage;
    const char           *key;
    const char           *cmd;
    const char           *rcpt;
};

/* smtpd_policy_tail - "; from=<..> to=<..> proto=ESMTP helo=<..>" for a log line. */
static void
smtpd_policy_tail(const struct smtpd_policy_ctx *c, char *out, size_t outlen)
{
    const struct smtpd_session *s = c->s;
    const char *from = c->stage == POLICY_SENDER ? c->key : s->sender;
    const char *helo = c->stage == POLICY_HELO ? c->key : s->helo;
    size_t      off;

    off = (size_t)snprintf(out, outlen, ";");
    if (from != NULL && off < outlen)
        off += (size_t)snprintf(out + off, outlen - off, " from=<%s>", from);
    if (c->rcpt != NULL && off < outlen)
        off += (size_t)snprintf(out + off, outlen - off, " to=<%s>", c->rcpt);
    if (off < outlen)
        off += (size_t)snprintf(out + off, outlen - off, " proto=%s",
                                s->esmtp ? "ESMTP" : "SMTP");
    if (helo != NULL && off < outlen)
        snprintf(out + off, outlen - off, " helo=<%s>", helo);
}

/* smtpd_policy_what - the thing a stage refuses, with Postfix's words for it. */
static void
smtpd_policy_what(const struct smtpd_policy_ctx *c, char *out, size_t outlen)
{
    char label[SMTPD_POLICY_LABEL];

    switch (c->stage) {
    case POLICY_CLIENT:
        snprintf(out, outlen, "<%s>: Client host",
                 smtpd_policy_client_label(c->s, label, sizeof(label)));
        break;
    case POLICY_HELO:
        snprintf(out, outlen, "<%s>: Helo command", c->key);
        break;
    case POLICY_SENDER:
        snprintf(out, outlen, "<%s>: Sender address", c->key);
        break;
    case POLICY_RECIPIENT:
        snprintf(out, outlen, "<%s>: Recipient address", c->key);
        break;
    }
}

/* smtpd_policy_warn - a WARN entry met on the way (the search goes on). */
static void
smtpd_policy_warn(void *arg, const struct policy_action *a)
{
    const struct smtpd_policy_ctx *c = arg;
    char label[SMTPD_POLICY_LABEL], what[SMTPD_POLICY_WHAT], tail[SMTPD_POLICY_TAIL];

    smtpd_policy_what(c, what, sizeof(what));
    smtpd_policy_tail(c, tail, sizeof(tail));
    log_info("warn: %s from %s: %s%s%s%s (%s)", c->cmd,
             smtpd_policy_client_label(c->s, label, sizeof(label)), what,
             a->text[0] ? ": " : " triggers WARN action", a->text, tail, a->where);
}

/* smtpd_policy_check - see smtpd_policy.h. */
enum policy_kind
smtpd_policy_check(struct smtpd_session *s, enum policy_stage stage, const char *key,
                   const char *cmd, const char *rcpt, struct policy_action *out)
{
    struct smtpd_policy_ctx c = { s, stage, key, cmd, rcpt };
    struct policy_tables   *t = smtpd_policy_tables[stage];
    enum policy_kind        k;
    char                    label[SMTPD_POLICY_LABEL];

    memset(out, 0, sizeof(*out));
    if (s->svc == SMTPD_SVC_SUBMIT)
        return POLICY_NONE;
    if (stage == POLICY_CLIENT)
        key = c.key = s->client_name[0] ? s->client_name : "unknown";
    k = POLICY_NONE;
    smtpd_policy_client_label(s, label, sizeof(label));
    if (t != NULL && policy_tables_count(t) > 0)
        k = policy_access_check(t, stage, key, stage == POLICY_CLIENT ? s->addr : NULL, label,
                                smtpd_policy_warn, &c, out);
    if (k == POLICY_DUNNO || k == POLICY_WARN)
        k = POLICY_NONE;              /* not an answer: the search ran out */
    if (k == POLICY_NONE)             /* the built-in restrictions come after the tables */
        k = smtpd_restrict_check(s, stage, key, out);
    out->kind = k;
    if (k != POLICY_NONE)
        log_debug("%s access: %s from %s: %s (%s)", policy_stage_name(stage), cmd, label,
                  policy_kind_name(k), out->where);
    return k;
}

/* smtpd_policy_client - see smtpd_policy.h. */
enum policy_kind
smtpd_policy_client(struct smtpd_session *s, struct policy_action *out)
{
    return smtpd_policy_check(s, POLICY_CLIENT, NULL, "CONNECT", NULL, out);
}

/* smtpd_policy_refuse - see smtpd_policy.h. */
void
smtpd_policy_refuse(struct smtpd_session *s, enum policy_stage stage, const char *key,
                    const char *cmd, const char *rcpt, const struct policy_action *a)
{
    struct smtpd_policy_ctx c = { s, stage, key, cmd, rcpt };
    char        label[SMTPD_POLICY_LABEL], what[SMTPD_POLICY_WHAT], tail[SMTPD_POLICY_TAIL];
    char        text[SMTPD_POLICY_WHAT + POLICY_TEXT_MAX + 16];
    int         code = a->code;
    const char *enh = a->enh;

    if (code < 400 || code > 599)     /* the table said no without saying how */
        code = a->kind == POLICY_DEFER ? 450 : 550;
    if (enh[0] == '\0' || enh[0] != '0' + code / 100)
        enh = code >= 500 ? "5.7.1" : "4.7.1";
    smtpd_policy_what(&c, what, sizeof(what));
    smtpd_policy_tail(&c, tail, sizeof(tail));
    snprintf(text, sizeof(text), "%s rejected: %s", what, a->text[0] ? a->text : "Access denied");
    smtpd.stats.policy_rejected++;
    log_info("%s: %s from %s: %d %s %s%s (%s)", code >= 500 ? "reject" : "defer", cmd,
             smtpd_policy_client_label(s, label, sizeof(label)), code, enh, text, tail,
             a->where);
    smtpd_session_reply(s, code, enh, "%s", text);
    if (code >= 500)
        (void)smtpd_session_error(s);
}

/* smtpd_policy_note - see smtpd_policy.h. */
char *
smtpd_policy_note(struct smtpd_session *s, enum policy_stage stage, const char *key,
                  const char *cmd, const char *rcpt, const struct policy_action *a)
{
    struct smtpd_policy_ctx c = { s, stage, key, cmd, rcpt };
    const char *word = a->kind == POLICY_DISCARD ? "discard" : "hold";
    const char *name = a->kind == POLICY_DISCARD ? "DISCARD" : "HOLD";
    char label[SMTPD_POLICY_LABEL], what[SMTPD_POLICY_WHAT], tail[SMTPD_POLICY_TAIL];
    char *why;

    smtpd_policy_what(&c, what, sizeof(what));
    smtpd_policy_tail(&c, tail, sizeof(tail));
    if (a->text[0])
        why = xasprintf("%s: %s (%s)", what, a->text, a->where);
    else
        why = xasprintf("%s triggers %s action (%s)", what, name, a->where);
    log_info("%s: %s from %s: %s%s", word, cmd,
             smtpd_policy_client_label(s, label, sizeof(label)), why, tail);
    return why;
}

/* smtpd_policy_verdict - see smtpd_policy.h. */
enum policy_kind
smtpd_policy_verdict(const struct smtpd_session *s, const char **why)
{
    static char             client_why[POLICY_TEXT_MAX + POLICY_WHERE_MAX + 64];
    const struct policy_action *ca = s->client_action;
    enum policy_kind        k = POLICY_NONE;

    *why = "";
    if (ca != NULL && (ca->kind == POLICY_HOLD || ca->kind == POLICY_DISCARD)) {
        if (ca->text[0])
            snprintf(client_why, sizeof(client_why), "Client host: %s (%s)", ca->text,
                     ca->where);
        else
            snprintf(client_why, sizeof(client_why), "Client host triggers %s action (%s)",
                     policy_kind_name(ca->kind), ca->where);
        k = ca->kind;
        *why = client_why;
    }
    if (s->helo_verdict == POLICY_DISCARD
        || (s->helo_verdict == POLICY_HOLD && k == POLICY_NONE)) {
        k = s->helo_verdict;
        *why = s->helo_why ? s->helo_why : "";
    }
    if (s->txn_verdict == POLICY_DISCARD
        || (s->txn_verdict == POLICY_HOLD && k == POLICY_NONE)) {
        k = s->txn_verdict;
        *why = s->txn_why ? s->txn_why : "";
    }
    return k;
}

/* smtpd_policy_merge - see smtpd_policy.h. */
void
smtpd_policy_merge(enum policy_kind *verdict, char **why, enum policy_kind k, char *newwhy)
{
    if (k == POLICY_DISCARD ? *verdict == POLICY_DISCARD : *verdict != POLICY_NONE) {
        free(newwhy);                 /* no stronger than what is there */
        return;
    }
    *verdict = k;
    free(*why);
    *why = newwhy;
}

/* smtpd_policy_printable - a line of the message made safe for a log line, cut short. */
static void
smtpd_policy_printable(const char *in, size_t len, char *out, size_t outlen)
{
    size_t i, o = 0;

    for (i = 0; i < len && o + 4 < outlen && i < SMTPD_POLICY_SUBJECT_MAX; i++) {
        unsigned char ch = (unsigned char)in[i];

        out[o++] = (ch < 32 || ch == 127) ? '?' : (char)ch;
    }
    if (i < len && o + 4 <= outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* smtpd_policy_content_log - a content rule applied: "<qid>: warning: header Subject: ..
 * from name[addr]; from=<..> to=<..> proto=ESMTP helo=<..>: text (pcre:file:line)". */
static void
smtpd_policy_content_log(void *arg, enum content_part what, const struct policy_action *a,
                         const char *subject, size_t len)
{
    struct smtpd_session   *s = arg;
    struct smtpd_policy_ctx c = { s, POLICY_RECIPIENT, NULL, "DATA",
                                  s->nrcpt > 0 ? s->rcpts[0].given : NULL };
    char        line[SMTPD_POLICY_SUBJECT_MAX + 8], label[SMTPD_POLICY_LABEL];
    char        tail[SMTPD_POLICY_TAIL];
    char        code[32] = "";
    const char *word;

    switch (a->kind) {
    case POLICY_REJECT:
        word = "reject";
        break;
    case POLICY_DEFER:
        word = "defer";
        break;
    case POLICY_DISCARD:
        word = "discard";
        break;
    case POLICY_HOLD:
        word = "hold";
        break;
    case POLICY_WARN:
        word = "warning";
        break;
    case POLICY_REPLACE:
        word = "replace";
        break;
    case POLICY_PREPEND:
        word = "prepend";
        break;
    case POLICY_IGNORE:
        word = "ignore";
        break;
    default:
        return;
    }
    if ((a->kind == POLICY_REJECT || a->kind == POLICY_DEFER) && a->code != 0)
        snprintf(code, sizeof(code), "%d %s ", a->code, a->enh);
    smtpd_policy_printable(subject, len, line, sizeof(line));
    smtpd_policy_tail(&c, tail, sizeof(tail));
    log_info("%s: %s: %s %s from %s%s: %s%s (%s)", s->qid, word,
             what == CONTENT_BODY ? "body" : "header", line,
             smtpd_policy_client_label(s, label, sizeof(label)), tail, code,
             a->text[0] ? a->text : policy_kind_name(a->kind), a->where);
}

/* smtpd_policy_content_new - see smtpd_policy.h. */
struct content *
smtpd_policy_content_new(struct smtpd_session *s)
{
    if (!content_any(&smtpd_policy_rules))
        return NULL;
    return content_new(&smtpd_policy_rules, smtpd_policy_content_log, s);
}
