/* qmgr_dest - the feedback rules of one relay destination: window, failures, pause.
 *
 * See qmgr_dest.h. No I/O, no clock of its own: the caller passes the time. */
#include <string.h>

#include "ipc_msg.h"
#include "qmgr_dest.h"

/* qmgr_dest_init - start with the initial window. */
void
qmgr_dest_init(struct qmgr_dest *d, uint32_t initial, uint32_t limit)
{
    memset(d, 0, sizeof(*d));
    d->limit = limit ? limit : 1;
    d->window = initial < 1 ? 1 : initial > d->limit ? d->limit : initial;
}

/* qmgr_dest_feedback - grow on contact, halve and count on connection failure, pause. */
int
qmgr_dest_feedback(struct qmgr_dest *d, enum qmgr_dest_outcome o, uint64_t now,
                   uint64_t pause)
{
    switch (o) {
    case QMGR_DEST_REACHED:
        d->fails = 0;
        d->paused_until = 0;
        if (d->window < d->limit)
            d->window++;
        return 0;
    case QMGR_DEST_CONN_FAIL:
        d->window = d->window / 2 ? d->window / 2 : 1;
        if (++d->fails >= QMGR_DEST_PAUSE_AFTER && pause > 0) {
            /* After the pause one probe decides: a failure pauses again at once. */
            d->fails = QMGR_DEST_PAUSE_AFTER - 1;
            d->window = 1;
            d->paused_until = now + pause;
            return 1;
        }
        return 0;
    case QMGR_DEST_NEUTRAL:
    default:
        return 0;
    }
}

/* qmgr_dest_paused - still paused at now? */
int
qmgr_dest_paused(struct qmgr_dest *d, uint64_t now)
{
    if (d->paused_until != 0 && now >= d->paused_until)
        d->paused_until = 0;
    return d->paused_until != 0;
}

/* qmgr_dest_idle - nothing to remember: not paused, no failures. */
int
qmgr_dest_idle(const struct qmgr_dest *d, uint64_t now)
{
    return d->fails == 0 && (d->paused_until == 0 || now >= d->paused_until);
}

/* qmgr_dest_session_refused - the agent's text says the server refused the session, not
 * this recipient: "host X said: 421 ..." or a reply to the greeting or to EHLO. */
static int
qmgr_dest_session_refused(const char *text)
{
    const char *said;

    if (text == NULL)
        return 0;
    if (strstr(text, "(in reply to the initial greeting command)") != NULL ||
        strstr(text, "(in reply to EHLO command)") != NULL)
        return 1;
    said = strstr(text, " said: ");
    return said != NULL && strncmp(said + 7, "421", 3) == 0;
}

/* qmgr_dest_classify - connection failure or contact. */
enum qmgr_dest_outcome
qmgr_dest_classify(const char *relay, const uint32_t *status, const char *const *dsn,
                   const char *const *text, size_t n)
{
    size_t i;
    int    no_server = relay == NULL || relay[0] == '\0' || strcmp(relay, "none") == 0;
    int    all_44 = 1, all_refused = 1;

    if (n == 0)
        return QMGR_DEST_NEUTRAL;
    for (i = 0; i < n; i++) {
        if (status[i] != IPC_DELIV_TEMP)
            return QMGR_DEST_REACHED;
        if (dsn == NULL || dsn[i] == NULL || strncmp(dsn[i], "4.4.", 4) != 0)
            all_44 = 0;
        if (text == NULL || !qmgr_dest_session_refused(text[i]))
            all_refused = 0;
    }
    return no_server || all_44 || all_refused ? QMGR_DEST_CONN_FAIL : QMGR_DEST_REACHED;
}
