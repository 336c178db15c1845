/*
 * callbacks - the libmilter glue: xxfi_* callbacks that turn MTA events into
 * session calls and session results into smfi_* calls and SMFIS_* codes.
 *
 * Nothing here decides; shared/session does. Per-connection state lives only
 * in the context's private pointer (libmilter's worker pool runs one
 * connection's callbacks on varying threads).
 */
#ifndef MS_CALLBACKS_H
#define MS_CALLBACKS_H

#include <libmilter/mfapi.h>

/* The filter description to pass to smfi_register(). */
struct smfiDesc *callbacks_desc(const char *name);

/*
 * In the stress endpoint's process (daemon-endpoint.h): every session is
 * stressed from negotiation on, source=endpoint. Before smfi_main().
 */
void callbacks_set_endpoint(void);

#endif
