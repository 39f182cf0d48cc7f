#include "outcome.h"

static const struct {
	const char *name, *words;
	bool problem;
} table[] = {
    [FL_OUTCOME_OK] = {"ok", "ok", false},
    [FL_OUTCOME_UP_TO_DATE] = {"up_to_date", "up to date", false},
    [FL_OUTCOME_PENDING] = {"pending", "pending", false},
    [FL_OUTCOME_SKIPPED] = {"skipped", "skipped", false},
    [FL_OUTCOME_REFUSED] = {"refused", "REFUSED", true},
    [FL_OUTCOME_INVALID] = {"invalid", "INVALID", true},
    [FL_OUTCOME_FAILED] = {"failed", "FAILED", true},
    [FL_OUTCOME_CANCELLED] = {"cancelled", "cancelled", true},
    [FL_OUTCOME_NOT_RUN] = {"not_run", "not run", false},
};

const char *fl_outcome_name(fl_outcome o)
{
	return table[o].name;
}

const char *fl_outcome_words(fl_outcome o)
{
	return table[o].words;
}

bool fl_outcome_is_problem(fl_outcome o)
{
	return table[o].problem;
}

fl_run_outcome fl_run_outcome_of(const fl_outcome *services, size_t n, bool input_error, bool failed,
                                 bool interrupted)
{
	bool invalid = input_error, refused = false;
	for (size_t i = 0; i < n; i++) {
		switch (services[i]) {
		case FL_OUTCOME_INVALID:
			invalid = true;
			break;
		case FL_OUTCOME_FAILED:
		case FL_OUTCOME_CANCELLED:
			failed = true;
			break;
		case FL_OUTCOME_REFUSED:
			refused = true;
			break;
		default:
			break;
		}
	}
	if (interrupted)
		return FL_RUN_INTERRUPTED;
	if (invalid)
		return FL_RUN_INVALID;
	if (failed)
		return FL_RUN_FAILED;
	if (refused)
		return FL_RUN_REFUSED;
	return FL_RUN_OK;
}

const char *fl_run_outcome_name(fl_run_outcome r)
{
	static const char *names[] = {"ok", "refused", "failed", "invalid", "interrupted"};
	return names[r];
}

int fl_run_exit_code(fl_run_outcome r)
{
	static const int codes[] = {0, 3, 1, 2, 130};
	return codes[r];
}

fl_outcome fl_outcome_of_error(const fl_error *err)
{
	switch (err ? err->kind : FL_EDB) {
	case FL_EDRIFT:
		return FL_OUTCOME_REFUSED;
	case FL_EINTR:
		return FL_OUTCOME_CANCELLED;
	case FL_EINPUT:
		/* met while running (baseline over applied rows, undo without its U file):
		 * the server was already asked, so the service refused, not "bad input" */
		return FL_OUTCOME_REFUSED;
	default:
		return FL_OUTCOME_FAILED;
	}
}
