"""Every string a visitor reads, in one place per language (the kiosk page gets them as JSON)."""

from __future__ import annotations

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Ask about Ho Chi Minh",
        "attract_title": "Questions about Ho Chi Minh?",
        "attract_hint": "Touch the screen to start",
        "placeholder": "Type your question…",
        "ask": "Ask",
        "thinking": "Looking it up…",
        "suggestions_title": "Try asking",
        "sources": "Sources",
        "helpful_question": "Was this helpful?",
        "yes": "Yes",
        "no": "No",
        "thanks": "Thank you!",
        "new_visitor": "Start over",
        "error": "Sorry, something went wrong. Please try again.",
        "busy": "Many visitors are asking right now. Please try again in a moment.",
        "too_fast": "Please wait a moment before asking again.",
        "too_long": "Please keep your question under 500 characters.",
        "off_topic": "I can only answer questions about Ho Chi Minh and this museum. You could ask, for example:",
        "idle_warning": "Still there? The conversation will reset soon.",
    },
    "vi": {
        "title": "Hỏi về Chủ tịch Hồ Chí Minh",
        "attract_title": "Bạn muốn biết về Bác Hồ?",
        "attract_hint": "Chạm vào màn hình để bắt đầu",
        "placeholder": "Nhập câu hỏi của bạn…",
        "ask": "Hỏi",
        "thinking": "Đang tìm…",
        "suggestions_title": "Gợi ý câu hỏi",
        "sources": "Nguồn",
        "helpful_question": "Câu trả lời có hữu ích không?",
        "yes": "Có",
        "no": "Không",
        "thanks": "Cảm ơn bạn!",
        "new_visitor": "Bắt đầu lại",
        "error": "Xin lỗi, đã có lỗi. Vui lòng thử lại.",
        "busy": "Hiện có nhiều khách đang hỏi. Vui lòng thử lại sau giây lát.",
        "too_fast": "Vui lòng chờ một chút trước khi hỏi tiếp.",
        "too_long": "Câu hỏi cần ngắn hơn 500 ký tự.",
        "off_topic": "Tôi chỉ trả lời câu hỏi về Chủ tịch Hồ Chí Minh và bảo tàng. Bạn có thể hỏi:",
        "idle_warning": "Bạn còn đó không? Cuộc trò chuyện sẽ sớm được làm mới.",
    },
}

# Suggested questions: tapped on the kiosk and offered after an off-topic question. The model and the
# curated answers are English; the Vietnamese suggestions are questions the gate accepts.
SUGGESTIONS: dict[str, list[str]] = {
    "en": [
        "When and where was Ho Chi Minh born?",
        "Why is he called Uncle Ho?",
        "What did he do in France?",
        "What happened on 2 September 1945?",
        "Why was Saigon renamed Ho Chi Minh City?",
        "What did his will ask for?",
    ],
    "vi": [
        "Bác Hồ sinh năm nào?",
        "Ai đọc Tuyên ngôn Độc lập năm 1945?",
        "Why is he called Uncle Ho?",
        "What did he do in France?",
        "What happened on 2 September 1945?",
        "Why was Saigon renamed Ho Chi Minh City?",
    ],
}


def strings(language: str) -> dict[str, str]:
    return STRINGS.get(language, STRINGS["en"])


def suggestions(language: str) -> list[str]:
    return SUGGESTIONS.get(language, SUGGESTIONS["en"])
